import BackgroundFetchCore
import DBus

/// Handlers of the management interface. A caller acts on its own uid's apps;
/// uid 0 acts on all and names another user's app as `UID/APP_ID`.
extension Daemon {
    func listTasks(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let caller = try managerCaller(call)
            let tasks = engine.listTasks(uid: caller.app.uid == 0 ? nil : caller.app.uid).map {
                DBusValue.structure([.string($0.key.app.appID), .string($0.key.name), $0.vardict(includingUID: true)])
            }
            return [.array(element: "(ssa{sv})", tasks)]
        }
    }

    func setAppEnabled(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let app = try targetApp(call, call.arguments[0].stringValue ?? "")
            try engine.setAppEnabled(app, enabled: call.arguments[1].boolValue ?? true)
            return []
        }
    }

    func triggerTask(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let app = try targetApp(call, call.arguments[0].stringValue ?? "")
            let key = TaskKey(app: app, name: call.arguments[1].stringValue ?? "")
            return [.uint64(try engine.triggerTask(key))]
        }
    }

    func getHistory(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let app = try targetApp(call, call.arguments[0].stringValue ?? "")
            let key = TaskKey(app: app, name: call.arguments[1].stringValue ?? "")
            let rows = try engine.history(key).map {
                DBusValue.structure([
                    .uint64(UInt64(max(0, $0.requestedAt))), .uint64(UInt64(max(0, $0.finishedAt))),
                    .uint32($0.result?.rawValue ?? 0),
                ])
            }
            return [.array(element: "(ttu)", rows)]
        }
    }

    func getAppStatus(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let argument = call.arguments[0].stringValue ?? ""
            let app = try targetApp(call, argument)
            try TaskName.validate(app.appID, what: "app id")
            return [.uint32(engine.status(of: app).rawValue)]
        }
    }

    func listApps(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let caller = try managerCaller(call)
            let apps = engine.listApps(uid: caller.app.uid == 0 ? nil : caller.app.uid).map { app -> DBusValue in
                let info: [AppInfoKey: DBusValue] = [
                    .enabled: .bool(app.enabled), .restricted: .bool(app.restricted),
                    .minimumInterval: .uint32(app.minimumInterval), .taskCount: .uint32(UInt32(clamping: app.taskCount)),
                ]
                return .structure([
                    .string(app.app.appID), .uint32(app.app.uid), .uint32(app.status.rawValue),
                    .vardict(keyed: info),
                ])
            }
            return [.array(element: "(suua{sv})", apps)]
        }
    }

    /// The caller of a management call. On the system bus it becomes a
    /// monitor: `FetchFinished` of the apps it may see is sent to it.
    private func managerCaller(_ call: MethodCall) throws(FetchError) -> Caller {
        let caller = try registry.user(call.sender)
        if !broadcastsFinished { monitors[call.sender] = caller.app.uid }
        return caller
    }

    /// The app a management call names, checked against the caller's uid.
    private func targetApp(_ call: MethodCall, _ argument: String) throws(FetchError) -> AppKey {
        let caller = try managerCaller(call)
        guard let slash = argument.firstIndex(of: "/") else {
            return AppKey(uid: caller.app.uid, appID: argument)
        }
        let uidText = argument[..<slash]
        let appID = String(argument[argument.index(after: slash)...])
        guard let uid = UInt32(uidText) else {
            throw .invalidArgs("app id '\(CallerText.shown(argument))' is neither APP_ID nor UID/APP_ID")
        }
        guard caller.app.uid == 0 || uid == caller.app.uid else {
            throw FetchError(.accessDenied, "uid \(caller.app.uid) may not manage apps of uid \(uid)")
        }
        return AppKey(uid: uid, appID: appID)
    }
}
