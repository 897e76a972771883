import BackgroundFetchContract
import DBus
import Dispatch
import Foundation

/// A raw D-Bus client of the service, on a connection of its own, for the
/// tests, the bench and the stress suite: calls by member name (blocking,
/// with a callback, or awaited), and the signals it receives.
public final class ServiceClient: Sendable {
    public static let name = Wire.busName
    public static let path = Wire.objectPath
    public static let app = Wire.appInterface
    public static let manager = Wire.managerInterface

    /// Which of the service's signals the client asks the bus for.
    public enum Subscription: Sendable {
        case none
        /// The app interface's, as an app does (`FetchRequested`, `FetchExpired`).
        case appInterface
        /// Every one, `FetchFinished` too, as a monitor does.
        case everything
    }

    public let connection: BusConnection
    /// The well-known name it owns, which becomes its app id.
    public let appID: String?
    private let received = Locked<[Message]>([])

    /// Connects to the bus at `address` and takes `name` (nil: none).
    /// Signals of `subscription` (default: the app interface's when there is
    /// an `onSignal`, else none) go to `onSignal` on the connection's loop,
    /// or, without one, are kept for ``signals(_:)``.
    public init(
        address: String, name: String? = nil, threadName: String = "service-client", subscription: Subscription? = nil,
        onSignal: (@Sendable (Message) -> Void)? = nil
    ) throws {
        let subscription = subscription ?? (onSignal == nil ? .none : .appInterface)
        connection = try BusConnection.connect(.address(address), threadName: threadName)
        appID = name
        if let name {
            let result = try connection.requestName(name)
            guard result == .primaryOwner || result == .alreadyOwner else { throw HarnessError("the name \(name) is taken") }
        }
        guard subscription != .none else { return }
        connection.setMessageHandler { [received] message in
            guard message.kind == .signal, message.interface?.hasPrefix(Self.app) == true else { return false }
            if let onSignal { onSignal(message) } else { received.withLock { $0.append(message) } }
            return true
        }
        try connection.addMatch("type='signal',sender='\(Self.name)'" + (subscription == .everything ? "" : ",interface='\(Self.app)'"))
    }

    public var uniqueName: String { connection.uniqueName }

    public func close() { connection.close() }

    // MARK: Calls

    public static func message(
        _ member: String, _ arguments: [DBusValue] = [], interface: String? = app, expectsReply: Bool = true
    ) throws(DBusError) -> Message {
        try Message.methodCall(
            destination: name, path: path, interface: interface, member: member, arguments, expectsReply: expectsReply)
    }

    /// Calls a method and waits for its reply; throws the D-Bus error the
    /// service replied with.
    @discardableResult
    public func call(
        _ member: String, _ arguments: [DBusValue] = [], interface: String? = app, timeout: Int32 = 10_000
    ) throws(DBusError) -> [DBusValue] {
        try connection.callBlocking(try Self.message(member, arguments, interface: interface), timeoutMilliseconds: timeout)
            .arguments
    }

    /// The same call, its outcome as a value.
    public func result(
        _ member: String, _ arguments: [DBusValue] = [], interface: String? = app, timeout: Int32 = 10_000
    ) -> Result<[DBusValue], DBusError> {
        Result { () throws(DBusError) in try call(member, arguments, interface: interface, timeout: timeout) }
    }

    /// The D-Bus error a call fails with, or nil if it succeeds.
    public func error(_ member: String, _ arguments: [DBusValue] = [], interface: String? = app) -> DBusError? {
        if case .failure(let error) = result(member, arguments, interface: interface) { return error }
        return nil
    }

    /// Sends a built call and waits for its reply.
    public func send(_ message: Message, timeout: Int32 = 10_000) -> Result<Message, DBusError> {
        Result { () throws(DBusError) in try connection.callBlocking(message, timeoutMilliseconds: timeout) }
    }

    /// Sends a built call; `completion` runs on the connection's loop.
    public func callAsync(
        _ message: Message, timeout: Int32 = 10_000, _ completion: @escaping @Sendable (Result<Message, DBusError>) -> Void
    ) {
        connection.call(message, timeoutMilliseconds: timeout, completion: completion)
    }

    /// Calls a method and awaits its reply (named apart from the blocking
    /// ``call(_:_:interface:timeout:)``, which async tests use too).
    public func asyncCall(
        _ member: String, _ arguments: [DBusValue] = [], interface: String? = app,
        isolation: isolated (any Actor)? = #isolation
    ) async throws(DBusError) -> [DBusValue] {
        try await connection.call(try Self.message(member, arguments, interface: interface), timeoutMilliseconds: 10_000)
            .arguments
    }

    // MARK: The service's calls, read

    public func register(_ task: String, _ options: [String: DBusValue] = [:]) throws(DBusError) {
        try call("RegisterTask", [.string(task), .vardict(options)])
    }

    /// `GetRegisteredTasks` as task name → info.
    public func tasks() throws(DBusError) -> [String: [String: DBusValue]] {
        var result: [String: [String: DBusValue]] = [:]
        for item in try call("GetRegisteredTasks").first?.arrayValue ?? [] {
            guard let fields = item.structValue, let name = fields.first?.stringValue else { continue }
            result[name] = fields.count > 1 ? fields[1].vardictValue ?? [:] : [:]
        }
        return result
    }

    /// `Manager.ListTasks` as app id → task name → info.
    public func allTasks() throws(DBusError) -> [String: [String: [String: DBusValue]]] {
        var result: [String: [String: [String: DBusValue]]] = [:]
        for item in try call("ListTasks", interface: Self.manager).first?.arrayValue ?? [] {
            guard let f = item.structValue, let app = f[0].stringValue, let name = f[1].stringValue else { continue }
            result[app, default: [:]][name] = f[2].vardictValue ?? [:]
        }
        return result
    }

    /// Polls `Manager.ListTasks` until it holds no task of an app `app`
    /// accepts, for at most `timeout` seconds; the number left (-1: it never answered).
    public func tasksLeft(timeout: TimeInterval, every interval: TimeInterval, of app: (String) -> Bool = { _ in true }) -> Int {
        var left = -1
        _ = try? pollUntil("no task left", timeout: timeout, every: interval) { () -> Bool? in
            if let tasks = try? allTasks() { left = tasks.filter { app($0.key) }.values.reduce(0) { $0 + $1.count } }
            return left == 0 ? true : nil
        }
        return left
    }

    // MARK: Signals

    /// Signals received so far with this member.
    public func signals(_ member: String) -> [Message] {
        received.value.filter { $0.member == member }
    }

    /// Waits for the `count`-th signal with this member.
    public func waitForSignal(_ member: String, count: Int = 1, timeout: TimeInterval = 10) throws -> Message {
        try pollUntil("\(member) signal #\(count)", timeout: timeout) {
            let matching = signals(member)
            return matching.count >= count ? matching[count - 1] : nil
        }
    }
}

extension Dictionary where Key == String, Value == DBusValue {
    /// `RegisterTask` options with the keys given.
    public static func options(interval: UInt32? = nil, stopOnTerminate: Bool? = nil, startOnBoot: Bool? = nil) -> Self {
        var options: Self = [:]
        if let interval { options[RegisterOptionKey.minimumInterval.rawValue] = .uint32(interval) }
        if let stopOnTerminate { options[RegisterOptionKey.stopOnTerminate.rawValue] = .bool(stopOnTerminate) }
        if let startOnBoot { options[RegisterOptionKey.startOnBoot.rawValue] = .bool(startOnBoot) }
        return options
    }
}
