import BackgroundFetchCore
import DBus

/// The service's two interfaces, declared once: each row names a member, its
/// typed arguments and its handler. Introspection is printed from here, and a
/// test checks it against `dbus/org.bgfetch.BackgroundFetch1.xml`.
extension Daemon {
    typealias Handler = @DaemonActor @Sendable (Daemon) -> (MethodCall) throws(DBusError) -> [DBusValue]

    /// The interfaces, with handlers calling `daemon` (nil: for printing only).
    /// The object server calls them on the daemon's loop.
    nonisolated static func interfaces(serving daemon: Daemon?, config: DaemonConfig) -> [DBusInterface] {
        func bind(_ handler: @escaping Handler) -> DBusMethod.Handler {
            { [weak daemon] call throws(DBusError) in
                guard let daemon else { throw .failed("the service is shutting down") }
                return try DaemonActor.assumeIsolated { () throws(DBusError) in try handler(daemon)(call) }
            }
        }
        let config = config
        return [
            DBusInterface(
                name: Wire.appInterface,
                methods: [
                    DBusMethod("RegisterTask", in: [.init("name", "s"), .init("options", "a{sv}")], handler: bind(Daemon.registerTask)),
                    DBusMethod("UnregisterTask", in: [.init("name", "s")], handler: bind(Daemon.unregisterTask)),
                    DBusMethod("UnregisterAllTasks", handler: bind(Daemon.unregisterAllTasks)),
                    DBusMethod("IsTaskRegistered", in: [.init("name", "s")], out: [.init("registered", "b")], handler: bind(Daemon.isTaskRegistered)),
                    DBusMethod("GetRegisteredTasks", out: [.init("tasks", "a(sa{sv})")], handler: bind(Daemon.getRegisteredTasks)),
                    DBusMethod("GetStatus", out: [.init("status", "u")], handler: bind(Daemon.getStatus)),
                    DBusMethod("SetMinimumInterval", in: [.init("seconds", "u")], handler: bind(Daemon.setMinimumInterval)),
                    DBusMethod("FinishFetch", in: [.init("request_id", "t"), .init("result", "u")], handler: bind(Daemon.finishFetch)),
                    DBusMethod("TriggerFetch", in: [.init("name", "s")], out: [.init("request_id", "t")], handler: bind(Daemon.triggerFetch)),
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
                    DBusMethod("ListTasks", out: [.init("tasks", "a(ssa{sv})")], handler: bind(Daemon.listTasks)),
                    DBusMethod("SetAppEnabled", in: [.init("app_id", "s"), .init("enabled", "b")], handler: bind(Daemon.setAppEnabled)),
                    DBusMethod("TriggerTask", in: [.init("app_id", "s"), .init("name", "s")], out: [.init("request_id", "t")], handler: bind(Daemon.triggerTask)),
                    DBusMethod("GetHistory", in: [.init("app_id", "s"), .init("name", "s")], out: [.init("fetches", "a(ttu)")], handler: bind(Daemon.getHistory)),
                    DBusMethod("GetAppStatus", in: [.init("app_id", "s")], out: [.init("status", "u")], handler: bind(Daemon.getAppStatus)),
                    DBusMethod("ListApps", out: [.init("apps", "a(suua{sv})")], handler: bind(Daemon.listApps)),
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
