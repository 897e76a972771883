import BackgroundFetchCore
import DBus

/// The service's two interfaces, declared once: each row names a member, its
/// typed arguments and its handler. Introspection is printed from here, and a
/// test checks it against `dbus/org.bgfetch.BackgroundFetch1.xml`.
extension Daemon {
    /// A row's handler: a method of the daemon, called with it and the call.
    /// (Not the unapplied `Daemon.getStatus`: applying that to the daemon
    /// allocates a closure on every call.)
    typealias Handler = @DaemonActor @Sendable (Daemon, MethodCall) throws(DBusError) -> [DBusValue]

    /// The interfaces, with handlers calling `daemon` (nil: for printing only).
    /// The object server calls them on the daemon's loop.
    nonisolated static func interfaces(serving daemon: Daemon?, config: DaemonConfig) -> [DBusInterface] {
        func bind(_ handler: @escaping Handler) -> DBusMethod.Handler {
            guard let daemon else { return { _ throws(DBusError) in throw .failed("not serving") } }
            // Unowned: the daemon owns the server that holds this, and a weak
            // reference would make every retain of the daemon take the slow path.
            return DaemonActor.calledOnLoop { [unowned daemon] call throws(DBusError) in try handler(daemon, call) }
        }
        let config = config
        return [
            DBusInterface(
                name: Wire.appInterface,
                methods: [
                    DBusMethod("RegisterTask", in: [.init("name", "s"), .init("options", "a{sv}")], handler: bind { d, c throws(DBusError) in try d.registerTask(c) }),
                    DBusMethod("UnregisterTask", in: [.init("name", "s")], handler: bind { d, c throws(DBusError) in try d.unregisterTask(c) }),
                    DBusMethod("UnregisterAllTasks", handler: bind { d, c throws(DBusError) in try d.unregisterAllTasks(c) }),
                    DBusMethod("IsTaskRegistered", in: [.init("name", "s")], out: [.init("registered", "b")], query: true, handler: bind { d, c throws(DBusError) in try d.isTaskRegistered(c) }),
                    DBusMethod("GetRegisteredTasks", out: [.init("tasks", "a(sa{sv})")], handler: bind { d, c throws(DBusError) in try d.getRegisteredTasks(c) }),
                    DBusMethod("GetStatus", out: [.init("status", "u")], query: true, handler: bind { d, c throws(DBusError) in try d.getStatus(c) }),
                    DBusMethod("SetMinimumInterval", in: [.init("seconds", "u")], handler: bind { d, c throws(DBusError) in try d.setMinimumInterval(c) }),
                    DBusMethod("FinishFetch", in: [.init("request_id", "t"), .init("result", "u")], handler: bind { d, c throws(DBusError) in try d.finishFetch(c) }),
                    DBusMethod("TriggerFetch", in: [.init("name", "s")], out: [.init("request_id", "t")], handler: bind { d, c throws(DBusError) in try d.triggerFetch(c) }),
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
                    DBusMethod("ListTasks", out: [.init("tasks", "a(ssa{sv})")], handler: bind { d, c throws(DBusError) in try d.listTasks(c) }),
                    DBusMethod("SetAppEnabled", in: [.init("app_id", "s"), .init("enabled", "b")], handler: bind { d, c throws(DBusError) in try d.setAppEnabled(c) }),
                    DBusMethod("TriggerTask", in: [.init("app_id", "s"), .init("name", "s")], out: [.init("request_id", "t")], handler: bind { d, c throws(DBusError) in try d.triggerTask(c) }),
                    DBusMethod("GetHistory", in: [.init("app_id", "s"), .init("name", "s")], out: [.init("fetches", "a(ttu)")], handler: bind { d, c throws(DBusError) in try d.getHistory(c) }),
                    DBusMethod("GetAppStatus", in: [.init("app_id", "s")], out: [.init("status", "u")], query: true, handler: bind { d, c throws(DBusError) in try d.getAppStatus(c) }),
                    DBusMethod("ListApps", out: [.init("apps", "a(suua{sv})")], handler: bind { d, c throws(DBusError) in try d.listApps(c) }),
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
