import BackgroundFetchContract
import DBus
import Foundation
import Synchronization

/// A raw D-Bus client of the service for tests: calls by member name and
/// records the signals it receives.
final class ServiceClient: @unchecked Sendable {
    static let name = Wire.busName
    static let path = Wire.objectPath
    static let app = Wire.appInterface
    static let manager = Wire.managerInterface

    let connection: BusConnection
    private let received = ReceivedSignals()

    /// Connects; `ownName` first takes a well-known name, which becomes the app id.
    init(bus: TestBus, ownName: String? = nil) throws {
        connection = try bus.connect()
        if let ownName { _ = try connection.requestName(ownName) }
        connection.setMessageHandler { [received] message in
            guard message.kind == .signal else { return false }
            received.messages.withLock { $0.append(message) }
            return true
        }
        try connection.addMatch("type='signal',sender='\(Self.name)'")
    }

    var uniqueName: String { connection.uniqueName }

    /// Calls a method; throws the D-Bus error the service replied with.
    @discardableResult
    func call(_ member: String, _ arguments: [DBusValue] = [], interface: String? = ServiceClient.app) throws -> [DBusValue] {
        let message = try Message.methodCall(
            destination: Self.name, path: Self.path, interface: interface, member: member, arguments)
        return try connection.callBlocking(message, timeoutMilliseconds: 10_000).arguments
    }

    /// The D-Bus error a call fails with, or nil if it succeeds.
    func error(_ member: String, _ arguments: [DBusValue] = [], interface: String? = ServiceClient.app) -> DBusError? {
        do {
            try call(member, arguments, interface: interface)
            return nil
        } catch let error as DBusError {
            return error
        } catch {
            return DBusError("unexpected", "\(error)")
        }
    }

    func register(_ name: String, _ options: [String: DBusValue] = [:]) throws {
        try call("RegisterTask", [.string(name), .vardict(options)])
    }

    func tasks() throws -> [String: [String: DBusValue]] {
        var result: [String: [String: DBusValue]] = [:]
        for item in try call("GetRegisteredTasks").first?.arrayValue ?? [] {
            guard let fields = item.structValue, let name = fields[0].stringValue else { continue }
            result[name] = fields[1].vardictValue ?? [:]
        }
        return result
    }

    /// `Manager.ListTasks` as app id → task name → info.
    func allTasks() throws -> [String: [String: [String: DBusValue]]] {
        var result: [String: [String: [String: DBusValue]]] = [:]
        for item in try call("ListTasks", interface: Self.manager).first?.arrayValue ?? [] {
            guard let f = item.structValue, let app = f[0].stringValue, let name = f[1].stringValue else { continue }
            result[app, default: [:]][name] = f[2].vardictValue ?? [:]
        }
        return result
    }

    /// Signals received so far with this member.
    func signals(_ member: String) -> [Message] {
        received.messages.withLock { $0.filter { $0.member == member } }
    }

    /// Waits for the `count`-th signal with this member.
    func waitForSignal(_ member: String, count: Int = 1, timeout: TimeInterval = 10) throws -> Message {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let matching = signals(member)
            if matching.count >= count { return matching[count - 1] }
            usleep(5_000)
        }
        throw TestError("no \(member) signal #\(count) within \(timeout) s")
    }

    func close() { connection.close() }
}

final class ReceivedSignals: Sendable {
    let messages = Mutex<[Message]>([])
}
