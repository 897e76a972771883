import BackgroundFetchContract
import DBus
import Foundation
import Synchronization

/// The management side of bgfetch, for tools and settings panels such as
/// `bgfetchctl`: every app's tasks, the user's on/off switch, triggering,
/// history, and the `FetchFinished` feed.
///
/// The service decides what the caller may see: its own uid's apps, or every
/// user's for uid 0 (which may name another user's app as `UID/APP_ID`).
/// Unlike ``BackgroundFetchClient`` it does not reconnect: it is meant for short
/// calls, and ``fetchFinishedEvents()`` streams end when the bus goes away.
public final class BackgroundFetchManager: Sendable {
    /// One task of one app (`ListTasks`).
    public struct ManagedTask: Sendable, Hashable {
        public var appID: String
        public var uid: UInt32
        public var info: BackgroundFetchTaskInfo

        public init(appID: String, uid: UInt32, info: BackgroundFetchTaskInfo) {
            self.appID = appID
            self.uid = uid
            self.info = info
        }
    }

    /// One past fetch (`GetHistory`).
    public struct FetchRecord: Sendable, Hashable {
        /// When the service asked for it.
        public var requestedAt: Date
        /// When the app answered; nil if it expired or is outstanding.
        public var finishedAt: Date?
        /// nil while the fetch is outstanding.
        public var result: BackgroundFetchResult?

        public init(requestedAt: Date, finishedAt: Date?, result: BackgroundFetchResult?) {
            self.requestedAt = requestedAt
            self.finishedAt = finishedAt
            self.result = result
        }
    }

    /// A `FetchFinished` signal: a fetch was answered or expired (then `.failed`).
    public struct FetchFinished: Sendable, Hashable {
        public var appID: String
        public var taskName: String
        public var requestID: UInt64
        public var result: BackgroundFetchResult?
        /// The raw result number, also when it is not a known result.
        public var rawResult: UInt32
    }

    /// The service's read-only properties.
    public struct ServiceInfo: Sendable, Hashable {
        public var version: String
        /// How long an app has to answer a fetch.
        public var fetchTimeout: Duration
        /// The interval of a task registered without one.
        public var defaultMinimumInterval: Duration
        /// The administrator's floor on every interval.
        public var minimumIntervalFloor: Duration
        /// The unique bus name of the service's connection.
        public var owner: String
    }

    public let bus: BackgroundFetchClient.Bus
    private let connection: BusConnection
    private let observers = Mutex<[UInt64: AsyncStream<FetchFinished>.Continuation]>([:])
    private let nextObserverID = Atomic<UInt64>(0)
    private let subscribed = Mutex(false)

    /// Connects to `bus`. Throws `busUnavailable` if it cannot be reached.
    public init(bus: BackgroundFetchClient.Bus = .session) throws(BackgroundFetchError) {
        self.bus = bus
        connection = try ServiceCall.connect(bus, threadName: "bgfetch-manager")
        connection.setMessageHandler { [weak self] message in self?.handle(message) ?? false }
        connection.setDisconnectHandler { [weak self] in self?.finishObservers() }
    }

    deinit { close() }

    public func close() {
        finishObservers()
        connection.close()
    }

    // MARK: Calls

    /// The service's properties; throws `serviceNotRunning` when it does not run.
    public func serviceInfo() async throws(BackgroundFetchError) -> ServiceInfo {
        // Properties first: on a bus that can start the service, that starts it.
        let properties = try await ServiceCall.properties(connection, on: bus)
        let owner = try await ServiceCall.callBus(connection, on: bus, "GetNameOwner", [.string(Wire.busName)])
        return ServiceInfo(
            version: properties["Version"]?.stringValue ?? "",
            fetchTimeout: .seconds(properties["FetchTimeout"]?.uint32Value ?? 0),
            defaultMinimumInterval: .seconds(properties["DefaultMinimumInterval"]?.uint32Value ?? 0),
            minimumIntervalFloor: .seconds(properties["MinimumIntervalFloor"]?.uint32Value ?? 0),
            owner: owner.first?.stringValue ?? "")
    }

    /// The tasks the caller may see, sorted by app and name.
    public func listTasks() async throws(BackgroundFetchError) -> [ManagedTask] {
        guard let items = try await call("ListTasks").first?.arrayValue else { throw .badReply("ListTasks") }
        var tasks: [ManagedTask] = []
        for item in items {
            guard let fields = item.structValue, fields.count == 3, let app = fields[0].stringValue,
                let name = fields[1].stringValue, let info = fields[2].vardictValue
            else { throw .badReply("ListTasks") }
            tasks.append(
                ManagedTask(appID: app, uid: info["uid"]?.uint32Value ?? 0, info: BackgroundFetchTaskInfo(name: name, info: info)))
        }
        return tasks
    }

    /// An app as a settings panel shows it (`ListApps`).
    public struct ManagedApp: Sendable, Hashable {
        public var appID: String
        public var uid: UInt32
        public var status: BackgroundFetchStatus?
        /// The app's own switch (the `"*"` switch aside).
        public var enabled: Bool
        public var restricted: Bool
        /// Its `SetMinimumInterval`, zero if none.
        public var minimumInterval: Duration
        public var taskCount: Int
    }

    /// `appID`'s status as its own `GetStatus` would answer: tells Denied
    /// from Restricted (`UID/APP_ID` for root).
    public func appStatus(_ appID: String) async throws(BackgroundFetchError) -> BackgroundFetchStatus {
        guard let raw = try await call("GetAppStatus", [.string(appID)]).first?.uint32Value,
            let status = BackgroundFetchStatus(rawValue: raw)
        else { throw .badReply("GetAppStatus") }
        return status
    }

    /// Every app the caller may see that has tasks or a stored setting.
    public func listApps() async throws(BackgroundFetchError) -> [ManagedApp] {
        guard let items = try await call("ListApps").first?.arrayValue else { throw .badReply("ListApps") }
        var apps: [ManagedApp] = []
        for item in items {
            guard let fields = item.structValue, fields.count == 4, let app = fields[0].stringValue,
                let uid = fields[1].uint32Value, let status = fields[2].uint32Value, let info = fields[3].vardictValue
            else { throw .badReply("ListApps") }
            func value(_ key: AppInfoKey) -> DBusValue? { info[key.rawValue] }
            apps.append(
                ManagedApp(
                    appID: app, uid: uid, status: BackgroundFetchStatus(rawValue: status),
                    enabled: value(.enabled)?.boolValue ?? true, restricted: value(.restricted)?.boolValue ?? false,
                    minimumInterval: .seconds(value(.minimumInterval)?.uint32Value ?? 0),
                    taskCount: Int(value(.taskCount)?.uint32Value ?? 0)))
        }
        return apps
    }

    /// The user's switch for `appID` (`"*"`: every app of the user).
    public func setAppEnabled(_ appID: String, _ enabled: Bool) async throws(BackgroundFetchError) {
        _ = try await call("SetAppEnabled", [.string(appID), .bool(enabled)])
    }

    /// Fires an app's task now; returns the request id.
    public func triggerTask(appID: String, name: String) async throws(BackgroundFetchError) -> UInt64 {
        guard let id = try await call("TriggerTask", [.string(appID), .string(name)]).first?.uint64Value else {
            throw .badReply("TriggerTask")
        }
        return id
    }

    /// A task's recent fetches, oldest first.
    public func history(appID: String, name: String) async throws(BackgroundFetchError) -> [FetchRecord] {
        guard let items = try await call("GetHistory", [.string(appID), .string(name)]).first?.arrayValue else {
            throw .badReply("GetHistory")
        }
        var records: [FetchRecord] = []
        for item in items {
            guard let fields = item.structValue, fields.count == 3, let requested = fields[0].uint64Value,
                let finished = fields[1].uint64Value, let result = fields[2].uint32Value
            else { throw .badReply("GetHistory") }
            records.append(
                FetchRecord(
                    requestedAt: BackgroundFetchTaskInfo.date(microseconds: requested) ?? Date(timeIntervalSince1970: 0),
                    finishedAt: BackgroundFetchTaskInfo.date(microseconds: finished),
                    result: BackgroundFetchResult(rawValue: result)))
        }
        return records
    }

    // MARK: FetchFinished

    /// Every `FetchFinished` from now on, until the bus goes away or
    /// ``close()``. The match rule is in place when this returns.
    public func fetchFinishedEvents() async throws(BackgroundFetchError) -> AsyncStream<FetchFinished> {
        let needsMatch = subscribed.withLock { subscribed in
            defer { subscribed = true }
            return !subscribed
        }
        if needsMatch {
            let rule =
                "type='signal',sender='\(Wire.busName)',path='\(Wire.objectPath)',"
                + "interface='\(Wire.managerInterface)',member='FetchFinished'"
            do throws(BackgroundFetchError) {
                _ = try await ServiceCall.callBus(connection, on: bus, "AddMatch", [.string(rule)])
            } catch {
                subscribed.withLock { $0 = false }
                throw error
            }
        }
        let (stream, continuation) = AsyncStream.makeStream(of: FetchFinished.self)
        let id = nextObserverID.add(1, ordering: .relaxed).newValue
        observers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in self?.observers.withLock { _ = $0.removeValue(forKey: id) } }
        if !connection.isConnected { finishObservers() }
        return stream
    }

    private func handle(_ message: Message) -> Bool {
        guard message.kind == .signal, message.interface == Wire.managerInterface,
            message.member == "FetchFinished", message.signature == "sstu"
        else { return false }
        let arguments = message.arguments
        guard let app = arguments[0].stringValue, let name = arguments[1].stringValue,
            let id = arguments[2].uint64Value, let raw = arguments[3].uint32Value
        else { return true }
        let event = FetchFinished(
            appID: app, taskName: name, requestID: id, result: BackgroundFetchResult(rawValue: raw), rawResult: raw)
        for observer in observers.withLock({ Array($0.values) }) { observer.yield(event) }
        return true
    }

    private func finishObservers() {
        let all = observers.withLock { observers in
            defer { observers = [:] }
            return Array(observers.values)
        }
        for observer in all { observer.finish() }
    }

    private func call(_ member: String, _ arguments: [DBusValue] = []) async throws(BackgroundFetchError) -> [DBusValue] {
        try await ServiceCall.call(connection, on: bus, interface: Wire.managerInterface, member, arguments)
    }
}
