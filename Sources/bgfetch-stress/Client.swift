import BackgroundFetchContract
import DBus
import Foundation
import Synchronization

/// A client of the service on its own connection, with its own well-known
/// name (which becomes its app id).
final class StressClient: @unchecked Sendable {
    static let service = Wire.busName
    static let path = Wire.objectPath
    static let app = Wire.appInterface
    static let manager = Wire.managerInterface

    let connection: BusConnection
    let appID: String?

    /// Connects and takes `name`; `onSignal` runs on the connection's thread
    /// for each signal from the service.
    /// With `allSignals`, it subscribes to every signal of the service, the
    /// `FetchFinished` broadcast included (as a monitor does), not only the app interface's.
    init(
        address: String, name: String?, label: String = "stress-client", allSignals: Bool = false,
        onSignal: (@Sendable (Message) -> Void)? = nil
    ) throws {
        do {
            connection = try BusConnection.connect(.address(address), threadName: label)
            if let name {
                guard try connection.requestName(name) == .primaryOwner else { throw StressError("the name \(name) is taken") }
            }
            if let onSignal {
                connection.setMessageHandler { message in
                    guard message.kind == .signal, message.interface?.hasPrefix(StressClient.app) == true else { return false }
                    onSignal(message)
                    return true
                }
                // The app interface only, as apps do: FetchFinished (Manager) is a broadcast for monitors.
                try connection.addMatch(
                    "type='signal',sender='\(Self.service)'" + (allSignals ? "" : ",interface='\(Self.app)'"))
            }
        } catch let error as DBusError {
            throw StressError("cannot set up client \(name ?? "?"): \(error)")
        }
        appID = name
    }

    var uniqueName: String { connection.uniqueName }

    static func message(_ member: String, _ arguments: [DBusValue], interface: String? = app) throws(DBusError) -> Message {
        try Message.methodCall(destination: service, path: path, interface: interface, member: member, arguments)
    }

    /// Calls and waits for the reply (the connection's thread stays free).
    func call(_ member: String, _ arguments: [DBusValue] = [], interface: String? = app, timeout: Int32 = 10_000) -> Result<[DBusValue], DBusError> {
        let message: Message
        do { message = try Self.message(member, arguments, interface: interface) } catch { return .failure(error) }
        return send(message, timeout: timeout).map(\.arguments)
    }

    /// Sends a built call and waits for its reply.
    func send(_ message: Message, timeout: Int32 = 10_000) -> Result<Message, DBusError> {
        let box = Mutex<Result<Message, DBusError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        connection.call(message, timeoutMilliseconds: timeout) { result in
            box.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    /// Sends a call; `completion` runs on the connection's thread.
    func callAsync(_ message: Message, timeout: Int32 = 10_000, _ completion: @escaping @Sendable (Result<Message, DBusError>) -> Void) {
        connection.call(message, timeoutMilliseconds: timeout, completion: completion)
    }

    /// The app's tasks by name, or nil when the call fails.
    func tasks() -> Result<[String: [String: DBusValue]], DBusError> {
        call("GetRegisteredTasks").map { values in
            var result: [String: [String: DBusValue]] = [:]
            for item in values.first?.arrayValue ?? [] {
                guard let fields = item.structValue, let name = fields.first?.stringValue else { continue }
                result[name] = fields.count > 1 ? fields[1].vardictValue ?? [:] : [:]
            }
            return result
        }
    }

    func close() { connection.close() }
}

extension DBusValue {
    static func options(interval: UInt32? = nil, stopOnTerminate: Bool? = nil, startOnBoot: Bool? = nil) -> DBusValue {
        var options: [String: DBusValue] = [:]
        if let interval { options["minimumInterval"] = .uint32(interval) }
        if let stopOnTerminate { options["stopOnTerminate"] = .bool(stopOnTerminate) }
        if let startOnBoot { options["startOnBoot"] = .bool(startOnBoot) }
        return .vardict(options)
    }
}

extension DBusError {
    /// The bus (not the service) answered: the service was not there or went away.
    var isFromBus: Bool {
        [Name.noReply, Name.serviceUnknown, Name.nameHasNoOwner, Name.disconnected].contains(name)
    }

    /// The call never reached a service: nothing can have changed.
    var neverDelivered: Bool { name == Name.serviceUnknown || name == Name.nameHasNoOwner }
}
