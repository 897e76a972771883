import ArgumentParser
import BackgroundFetch

/// `bgfetchctl trigger APP TASK`.
struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger",
        abstract: "Fire an app's task now and print the fetch's request id.",
        discussion: """
            For developers: the app gets FetchRequested at once if it is connected, or is started by \
            D-Bus activation, or the fetch waits (pending) until the app registers the task again. \
            If a fetch of the task is outstanding, prints that one's id. Watch the answer with \
            `bgfetchctl monitor` or `bgfetchctl history APP TASK`.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Argument(help: "The app id (UID/APP_ID for another user's app, as root).")
    var app: String

    @Argument(help: "The task name.")
    var task: String

    func run() async throws {
        let manager = try busOptions.connect()
        defer { manager.close() }
        do throws(BackgroundFetchError) {
            let id = try await manager.triggerTask(appID: app, name: task)
            Output.line("\(id)")
        } catch {
            throw CtlFailure(error, task: (app, task))
        }
    }
}
