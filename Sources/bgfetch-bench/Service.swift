import BackgroundFetchContract
import DBus
import TestKit

/// The service's names and the calls the bench makes.
enum Service {
    static let name = Wire.busName
    static let path = Wire.objectPath
    static let appInterface = Wire.appInterface
    static let managerInterface = Wire.managerInterface
    /// Apps the bench plays own names under this prefix (the third source of an app id).
    static let benchAppPrefix = "org.bgfetch.Bench"

    static func call(_ member: String, _ arguments: [DBusValue] = [], interface: String = appInterface) throws(DBusError)
        -> Message
    {
        try Message.methodCall(destination: name, path: path, interface: interface, member: member, arguments)
    }

    static func register(_ task: String, interval: UInt32) throws(DBusError) -> Message {
        try call(
            "RegisterTask",
            [
                .string(task),
                .vardict(keyed: [RegisterOptionKey.minimumInterval: .uint32(interval), .stopOnTerminate: .bool(false)]),
            ])
    }
}

extension PrivateBus {
    /// A client connection; with `app`, it first owns that well-known name,
    /// which makes it that app (the bench runs outside any app scope).
    func connect(app: String? = nil, thread: String = "bench-client") throws(HarnessError) -> BusConnection {
        let connection: BusConnection
        do {
            connection = try BusConnection.connect(.address(address), threadName: thread)
        } catch {
            throw HarnessError("cannot connect to the private bus: \(error)")
        }
        if let app {
            let owned: BusConnection.NameRequestResult
            do { owned = try connection.requestName(app) } catch { throw HarnessError("cannot own \(app): \(error)") }
            guard owned == .primaryOwner else { throw HarnessError("the name \(app) is taken on the private bus") }
        }
        return connection
    }
}
