import ArgumentParser
import BackgroundFetch

/// `bgfetchctl apps [--json]`.
struct AppsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apps",
        abstract: "List every app with tasks or a stored switch: its status, switch, restriction and task count.",
        discussion: """
            Columns: APP, UID, STATUS (Available, Denied or Restricted: what the app's own GetStatus \
            answers), SWITCH (the app's own; the '*' switch shows in STATUS), RESTRICTED (by the \
            administrator), INTERVAL (the app's SetMinimumInterval, '-' if none), TASKS.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Flag(help: "Print JSON: a list of objects with the columns as keys.")
    var json = false

    func run() async throws {
        let manager = try busOptions.connect()
        defer { manager.close() }
        let apps: [BackgroundFetchManager.ManagedApp]
        do throws(BackgroundFetchError) {
            apps = try await manager.listApps()
        } catch {
            throw CtlFailure(error)
        }
        if json {
            Output.line(
                Output.json(
                    apps.map { app -> [String: Any] in
                        [
                            "app": app.appID, "uid": app.uid, "status": app.status?.rawValue ?? 0,
                            "statusName": app.status?.description ?? "unknown", "enabled": app.enabled,
                            "restricted": app.restricted, "minimumInterval": app.minimumInterval.components.seconds,
                            "taskCount": app.taskCount,
                        ]
                    }))
            return
        }
        var rows: [[String]] = []
        for app in apps {
            let interval = app.minimumInterval == .zero ? "-" : Output.duration(seconds: UInt64(app.minimumInterval.components.seconds))
            rows.append([
                app.appID, "\(app.uid)", app.status?.description ?? "unknown", app.enabled ? "on" : "off",
                app.restricted ? "yes" : "no", interval, "\(app.taskCount)",
            ])
        }
        Output.line(Output.table(["APP", "UID", "STATUS", "SWITCH", "RESTRICTED", "INTERVAL", "TASKS"], rows))
        Output.line("")  // as `list` sets its count apart
        Output.line("\(apps.count) \(apps.count == 1 ? "app" : "apps") listed.")
    }
}
