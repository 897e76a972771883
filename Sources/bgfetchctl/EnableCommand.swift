import ArgumentParser
import BackgroundFetch

/// `bgfetchctl enable APP`.
struct EnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable",
        abstract: "Switch background fetch on for an app ('*' for every app).",
        discussion: """
            Turning '*' on again leaves the per-app switches as they were. An app the administrator \
            restricts stays Restricted.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Argument(help: "The app id, UID/APP_ID as root, or '*' for all of your apps.")
    var app: String

    func run() async throws {
        try await AppSwitch.set(app, enabled: true, busOptions)
    }
}

/// The shared body of `enable` and `disable`.
enum AppSwitch {
    static func set(_ app: String, enabled: Bool, _ busOptions: BusOptions) async throws(CtlFailure) {
        let manager = try busOptions.connect()
        defer { manager.close() }
        let apps: [BackgroundFetchManager.ManagedApp]
        do throws(BackgroundFetchError) {
            try await manager.setAppEnabled(app, enabled)
            apps = try await manager.listApps()
        } catch {
            throw CtlFailure(error)
        }
        let what = app == "*" ? "every app" : app
        Output.line("Background fetch \(enabled ? "enabled" : "disabled") for \(what).")
        let (uid, appID) = StatusCommand.split(app)
        if app != "*", apps.first(where: { $0.appID == appID && $0.uid == uid })?.taskCount ?? 0 == 0 {
            Output.line("\(app) has no registered task; the switch is stored and applies when it registers one.")
        }
    }
}
