import BackgroundFetchCore
import DBus

/// Handlers of the app interface. Each one reads its arguments (the object
/// server has checked the signature), resolves the caller, and lets the
/// engine validate, act and store before it replies.
extension Daemon {
    func registerTask(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let name = call.arguments[0].stringValue ?? ""
            let options = try RegisterOptions.parse(call.arguments[1])
            try engine.register(try registry.caller(call.sender), name: name, options: options)
            return []
        }
    }

    func unregisterTask(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            try engine.unregister(try registry.caller(call.sender), name: call.arguments[0].stringValue ?? "")
            return []
        }
    }

    func unregisterAllTasks(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            try engine.unregisterAll(try registry.caller(call.sender))
            return []
        }
    }

    func isTaskRegistered(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            [.bool(try engine.isRegistered(try registry.caller(call.sender), name: call.arguments[0].stringValue ?? ""))]
        }
    }

    func getRegisteredTasks(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let caller = try registry.caller(call.sender)
            let tasks = engine.tasks(of: caller.app).map { DBusValue.structure([.string($0.key.name), $0.vardict()]) }
            return [.array(element: "(sa{sv})", tasks)]
        }
    }

    func getStatus(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in [.uint32(engine.status(of: try registry.caller(call.sender).app).rawValue)] }
    }

    func setMinimumInterval(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let seconds = call.arguments[0].uint32Value ?? 0
            try engine.setMinimumInterval(try registry.caller(call.sender).app, seconds: seconds)
            return []
        }
    }

    func finishFetch(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            let requestID = call.arguments[0].uint64Value ?? 0
            let raw = call.arguments[1].uint32Value ?? 0
            guard let result = FetchResult(rawValue: raw) else {
                throw .invalidArgs("result \(raw) is not a BackgroundFetchResult (1 NoData, 2 NewData, 3 Failed)")
            }
            try engine.finish(try registry.caller(call.sender), requestID: requestID, result: result)
            return []
        }
    }

    func triggerFetch(_ call: MethodCall) throws(DBusError) -> [DBusValue] {
        try run { () throws(FetchError) in
            [.uint64(try engine.trigger(try registry.caller(call.sender), name: call.arguments[0].stringValue ?? ""))]
        }
    }

    /// Runs a handler body, turning the engine's refusals into D-Bus errors.
    func run(_ body: () throws(FetchError) -> [DBusValue]) throws(DBusError) -> [DBusValue] {
        do throws(FetchError) {
            return try body()
        } catch {
            throw error.dbusError
        }
    }
}
