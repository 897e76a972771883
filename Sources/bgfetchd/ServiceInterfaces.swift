import BackgroundFetchCore
import DBus

/// The service's two interfaces, declared once: each row names a member, its
/// typed arguments and its handler. Introspection is printed from here, and a
/// test checks it against `dbus/org.bgfetch.BackgroundFetch1.xml`.
extension Daemon {
    /// A row's handler: a method of the daemon, called with it and the call.
    /// (Not the unapplied `Daemon.getStatus`: applying that to the daemon
    /// allocates a closure on every call.) Its methods throw `DBusError`,
    /// which Swift does not yet infer for a closure.
    typealias Handler = @DaemonActor @Sendable (Daemon, MethodCall) throws -> [DBusValue]

    /// The interfaces, with handlers calling `daemon` (nil: for printing only).
    /// The object server calls them on the daemon's loop.
    nonisolated static func interfaces(serving daemon: Daemon?, config: DaemonConfig) -> [DBusInterface] {
        func bind(_ handler: @escaping Handler) -> DBusMethod.Handler {
            { [weak daemon] call throws(DBusError) in
                guard let daemon else { throw .failed("the service is shutting down") }
                return try DaemonActor.assumeIsolated { () throws(DBusError) in
                    do {
                        return try handler(daemon, call)
                    } catch let error as DBusError {
                        throw error
                    } catch {
                        throw .failed("\(error)")
                    }
                }
            }
        }
        let config = config
        return [
            DBusInterface(
                name: Wire.appInterface,
                methods: [
                    DBusMethod("RegisterTask", in: [.init("name", "s"), .init("options", "a{sv}")], handler: bind { try $0.registerTask($1) }),
                    DBusMethod("UnregisterTask", in: [.init("name", "s")], handler: bind { try $0.unregisterTask($1) }),
                    DBusMethod("UnregisterAllTasks", handler: bind { try $0.unregisterAllTasks($1) }),
                    DBusMethod("IsTaskRegistered", in: [.init("name", "s")], out: [.init("registered", "b")], handler: bind { try $0.isTaskRegistered($1) }),
                    DBusMethod("GetRegisteredTasks", out: [.init("tasks", "a(sa{sv})")], handler: bind { try $0.getRegisteredTasks($1) }),
                    DBusMethod("GetStatus", out: [.init("status", "u")], handler: bind { try $0.getStatus($1) }),
                    DBusMethod("SetMinimumInterval", in: [.init("seconds", "u")], handler: bind { try $0.setMinimumInterval($1) }),
                    DBusMethod("FinishFetch", in: [.init("request_id", "t"), .init("result", "u")], handler: bind { try $0.finishFetch($1) }),
                    DBusMethod("TriggerFetch", in: [.init("name", "s")], out: [.init("request_id", "t")], handler: bind { try $0.triggerFetch($1) }),
                ],
                signals: [
                    DBusSignal("FetchRequested", [.init("name", "s"), .init("request_id", "t")]),
                    DBusSignal("FetchExpired", [.init("name", "s"), .init("request_id", "t")]),
                ],
                properties: [
                    DBusProperty("Version", "s") { .string(Wire.version) },
                    DBusProperty("FetchTimeout", "u") { .uint32(config.fetchTimeout) },
                    DBusProperty("DefaultMinimumInterval", "u") { .uint32(TaskOptions.defaultMinimumInterval) },
                    DBusProperty("MinimumIntervalFloor", "u") { .uint32(config.minimumIntervalFloor) },
                ]),
            DBusInterface(
                name: Wire.managerInterface,
                methods: [
                    DBusMethod("ListTasks", out: [.init("tasks", "a(ssa{sv})")], handler: bind { try $0.listTasks($1) }),
                    DBusMethod("SetAppEnabled", in: [.init("app_id", "s"), .init("enabled", "b")], handler: bind { try $0.setAppEnabled($1) }),
                    DBusMethod("TriggerTask", in: [.init("app_id", "s"), .init("name", "s")], out: [.init("request_id", "t")], handler: bind { try $0.triggerTask($1) }),
                    DBusMethod("GetHistory", in: [.init("app_id", "s"), .init("name", "s")], out: [.init("fetches", "a(ttu)")], handler: bind { try $0.getHistory($1) }),
                    DBusMethod("GetAppStatus", in: [.init("app_id", "s")], out: [.init("status", "u")], handler: bind { try $0.getAppStatus($1) }),
                    DBusMethod("ListApps", out: [.init("apps", "a(suua{sv})")], handler: bind { try $0.listApps($1) }),
                ],
                signals: [
                    DBusSignal("FetchFinished", [.init("app_id", "s"), .init("name", "s"), .init("request_id", "t"), .init("result", "u")]),
                ]),
        ]
    }

    /// The introspection XML of the service object, as `--print-introspection` prints it.
    nonisolated static func introspectionXML(config: DaemonConfig) -> String {
        interfaces(serving: nil, config: config).introspectionXML()
    }
}
