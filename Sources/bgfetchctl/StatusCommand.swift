import ArgumentParser
import BackgroundFetch
import Glibc

/// `bgfetchctl status [APP]`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show whether the service runs, or an app's status and tasks.",
        discussion: """
            Without APP: whether the service answers on the bus, its version, fetch timeout, \
            default interval and the administrator's interval floor. Exits 3 if it does not run.

            With APP: the app's status and its tasks with their states. An app whose tasks are \
            "paused" is Denied (the user switched it off: bgfetchctl enable turns it on) or Restricted \
            (the administrator's setting, which the user's switch cannot change). An app with no \
            registered task is unknown to the service (exit 4).

            With APP and TASK: one paragraph on when the task fires next and why: its interval, a \
            backoff, or the condition it waits for (the network, a network that is not metered, mains \
            power, the battery, power saving, sleep) and the system service that reports it.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Argument(help: "An app id (UID/APP_ID for another user's app, as root).")
    var app: String?

    @Argument(help: "A task of the app: say when it fires next and why.")
    var task: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let manager = try busOptions.connect()
        defer { manager.close() }
        if let app {
            try await showApp(app, manager)
        } else {
            try await showService(manager)
        }
    }

    private func showService(_ manager: BackgroundFetchManager) async throws {
        let info: BackgroundFetchManager.ServiceInfo
        do throws(BackgroundFetchError) {
            info = try await manager.serviceInfo()
        } catch {
            if json { Output.line(Output.json(["bus": busOptions.busName, "running": false])) }
            throw CtlFailure(error)
        }
        if json {
            Output.line(
                Output.json([
                    "bus": busOptions.busName, "running": true, "version": info.version, "owner": info.owner,
                    "fetchTimeout": Output.seconds(info.fetchTimeout),
                    "defaultMinimumInterval": Output.seconds(info.defaultMinimumInterval),
                    "minimumIntervalFloor": Output.seconds(info.minimumIntervalFloor),
                ]))
            return
        }
        Output.line(
            """
            bgfetch service on \(busOptions.bus): running
              Version:           \(info.version)
              Bus name:          org.bgfetch.BackgroundFetch1 (\(info.owner))
              Fetch timeout:     \(Output.duration(seconds: Output.seconds(info.fetchTimeout)))
              Default interval:  \(Output.duration(seconds: Output.seconds(info.defaultMinimumInterval)))
              Interval floor:    \(Output.duration(seconds: Output.seconds(info.minimumIntervalFloor)))
            """)
    }

    private func showApp(_ app: String, _ manager: BackgroundFetchManager) async throws {
        let (uid, appID) = Self.split(app)
        let all: [BackgroundFetchManager.ManagedTask]
        do throws(BackgroundFetchError) {
            all = try await manager.listTasks()
        } catch {
            throw CtlFailure(error)
        }
        let tasks = all.filter { $0.appID == appID && $0.uid == uid }
        guard !tasks.isEmpty else {
            throw CtlFailure(.notFound, "no such app: '\(app)' has no registered task")
        }
        if let task {
            guard let found = tasks.first(where: { $0.info.name == task }) else {
                throw CtlFailure(.notFound, "no such task: '\(app)' has no task '\(task)'")
            }
            let paragraph = Explanation.of(found)
            if json {
                var object = Output.json(found)
                object["explanation"] = paragraph
                Output.line(Output.json(object))
            } else {
                Output.line(paragraph)
            }
            return
        }
        let status: BackgroundFetchStatus
        do throws(BackgroundFetchError) {
            status = try await manager.appStatus(app)
        } catch {
            throw CtlFailure(error)
        }
        if json {
            Output.line(
                Output.json([
                    "app": appID, "uid": uid, "available": status == .available, "status": status.rawValue,
                    "statusName": status.description, "tasks": tasks.map(Output.json),
                ]))
            return
        }
        let why: String
        switch status {
        case .available: why = ""
        case .denied: why = " (background fetch is switched off for it; `bgfetchctl enable` turns it on)"
        case .restricted: why = " (the administrator restricts it; the user's switch cannot change that)"
        }
        Output.line("\(appID) (uid \(uid)): \(status)\(why)")
        Output.line("")
        Output.line(Output.taskTable(tasks, showUID: false))
    }

    /// `UID/APP_ID` or a plain `APP_ID` (the caller's uid).
    static func split(_ app: String) -> (uid: UInt32, appID: String) {
        if let slash = app.firstIndex(of: "/"), let uid = UInt32(app[..<slash]) {
            return (uid, String(app[app.index(after: slash)...]))
        }
        return (getuid(), app)
    }
}
