import BackgroundFetchContract
import DBus
import Foundation

/// One of the app's tasks as the service sees it (`GetRegisteredTasks`).
public struct BackgroundFetchTaskInfo: Sendable, Hashable {
    /// Where a task is in its life. Open to new values: the service may add states.
    public struct State: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// Waiting for its next fetch.
        public static let scheduled = State(rawValue: TaskState.scheduled.rawValue)
        /// A fetch is outstanding.
        public static let running = State(rawValue: TaskState.running.rawValue)
        /// Due, but no connection of the app to deliver to.
        public static let pending = State(rawValue: TaskState.pending.rawValue)
        /// Due, but held back by an unmet constraint, power saving or sleep (``reason`` says which).
        public static let waiting = State(rawValue: TaskState.waiting.rawValue)
        /// After a reboot, waiting for its app to register it again.
        public static let dormant = State(rawValue: TaskState.dormant.rawValue)
        /// The app's status is not Available (disabled or restricted).
        public static let paused = State(rawValue: TaskState.paused.rawValue)

        public var description: String { rawValue }
    }

    /// Why the next fetch is when it is. Open to new values: a reason this
    /// library does not know keeps its raw value.
    public struct Reason: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        public static let interval = Reason(rawValue: TaskReason.interval.rawValue)
        public static let noNewData = Reason(rawValue: TaskReason.noNewData.rawValue)
        public static let backoff = Reason(rawValue: TaskReason.backoff.rawValue)
        public static let batched = Reason(rawValue: TaskReason.batched.rawValue)
        public static let catchUp = Reason(rawValue: TaskReason.catchUp.rawValue)
        public static let network = Reason(rawValue: TaskReason.network.rawValue)
        public static let unmeteredNetwork = Reason(rawValue: TaskReason.unmeteredNetwork.rawValue)
        public static let externalPower = Reason(rawValue: TaskReason.externalPower.rawValue)
        public static let batteryLow = Reason(rawValue: TaskReason.batteryLow.rawValue)
        public static let powerSaver = Reason(rawValue: TaskReason.powerSaver.rawValue)
        public static let suspended = Reason(rawValue: TaskReason.suspended.rawValue)
        public static let running = Reason(rawValue: TaskReason.running.rawValue)
        public static let pending = Reason(rawValue: TaskReason.pending.rawValue)
        public static let dormant = Reason(rawValue: TaskReason.dormant.rawValue)
        public static let paused = Reason(rawValue: TaskReason.paused.rawValue)

        public var description: String { rawValue }
    }

    public var name: String
    /// The interval the task was registered with.
    public var minimumInterval: Duration
    /// The interval the service uses: the largest of the task's, the app's and
    /// the administrator's (backoff shows in ``nextFetch``, not here).
    public var effectiveInterval: Duration
    public var stopOnTerminate: Bool
    public var startOnBoot: Bool
    public var state: State
    /// When the next fetch is due; nil if none is.
    public var nextFetch: Date?
    /// When the last fetch was requested; nil if never.
    public var lastFetch: Date?
    /// The last fetch's result; nil if there was none yet.
    public var lastResult: BackgroundFetchResult?
    public var fetchCount: UInt64
    public var failureCount: UInt64
    /// Why ``nextFetch`` is when it is (for a waiting task: what it waits for).
    public var reason: Reason
    /// The constraints, `adaptive` and `launch` the task was registered with.
    public var constraints: BackgroundFetchOptions.Constraints
    public var adaptive: Bool
    public var launch: BackgroundFetchOptions.Launch
    /// Failed or expired fetches in a row (they back the next one off).
    public var consecutiveFailures: UInt32
    /// NoData answers in a row.
    public var consecutiveNoData: UInt32

    public init(
        name: String, minimumInterval: Duration, effectiveInterval: Duration, stopOnTerminate: Bool, startOnBoot: Bool,
        state: State, nextFetch: Date?, lastFetch: Date?, lastResult: BackgroundFetchResult?, fetchCount: UInt64,
        failureCount: UInt64, reason: Reason = .interval, constraints: BackgroundFetchOptions.Constraints = [],
        adaptive: Bool = true, launch: BackgroundFetchOptions.Launch = .activate, consecutiveFailures: UInt32 = 0,
        consecutiveNoData: UInt32 = 0
    ) {
        self.reason = reason
        self.constraints = constraints
        self.adaptive = adaptive
        self.launch = launch
        self.consecutiveFailures = consecutiveFailures
        self.consecutiveNoData = consecutiveNoData
        self.name = name
        self.minimumInterval = minimumInterval
        self.effectiveInterval = effectiveInterval
        self.stopOnTerminate = stopOnTerminate
        self.startOnBoot = startOnBoot
        self.state = state
        self.nextFetch = nextFetch
        self.lastFetch = lastFetch
        self.lastResult = lastResult
        self.fetchCount = fetchCount
        self.failureCount = failureCount
    }

    /// Reads the service's info dictionary; missing keys read as zero.
    init(name: String, info: [String: DBusValue]) {
        func value(_ key: TaskInfoKey) -> DBusValue? { info[key.rawValue] }
        self.init(
            name: name,
            minimumInterval: .seconds(value(.minimumInterval)?.uint32Value ?? 0),
            effectiveInterval: .seconds(value(.effectiveInterval)?.uint32Value ?? 0),
            stopOnTerminate: value(.stopOnTerminate)?.boolValue ?? true,
            startOnBoot: value(.startOnBoot)?.boolValue ?? false,
            state: State(rawValue: value(.state)?.stringValue ?? ""),
            nextFetch: Self.date(microseconds: value(.nextFetch)?.uint64Value),
            lastFetch: Self.date(microseconds: value(.lastFetch)?.uint64Value),
            lastResult: (value(.lastResult)?.uint32Value).flatMap(BackgroundFetchResult.init(rawValue:)),
            fetchCount: value(.fetchCount)?.uint64Value ?? 0,
            failureCount: value(.failureCount)?.uint64Value ?? 0,
            reason: Reason(rawValue: value(.reason)?.stringValue ?? ""),
            constraints: BackgroundFetchOptions.Constraints(
                BackgroundFetchOptions.Constraints.keys.compactMap { info[$0.1.rawValue]?.boolValue == true ? $0.0 : nil }),
            adaptive: value(.adaptive)?.boolValue ?? true,
            launch: BackgroundFetchOptions.Launch(rawValue: value(.launch)?.stringValue ?? "") ?? .activate,
            consecutiveFailures: value(.consecutiveFailures)?.uint32Value ?? 0,
            consecutiveNoData: value(.consecutiveNoData)?.uint32Value ?? 0)
    }

    /// A Unix time in microseconds as a date; 0 (the service's "none") is nil.
    static func date(microseconds: UInt64?) -> Date? {
        guard let microseconds, microseconds > 0 else { return nil }
        return Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    /// Reads `a(sa{sv})`.
    static func list(from reply: [DBusValue]) throws(BackgroundFetchError) -> [BackgroundFetchTaskInfo] {
        guard let items = reply.first?.arrayValue else { throw .badReply("GetRegisteredTasks") }
        var tasks: [BackgroundFetchTaskInfo] = []
        for item in items {
            guard let fields = item.structValue, fields.count == 2, let name = fields[0].stringValue,
                let info = fields[1].vardictValue
            else { throw .badReply("GetRegisteredTasks") }
            tasks.append(BackgroundFetchTaskInfo(name: name, info: info))
        }
        return tasks
    }
}
