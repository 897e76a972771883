/// Everything the service keeps about one task. Times are Unix microseconds.
public struct TaskRecord: Sendable, Equatable {
    /// A fetch that was sent (or is being sent) and not yet answered.
    public struct Outstanding: Sendable, Equatable {
        public var requestID: UInt64
        public var requestedAt: Int64
        /// When it expires; 0 while it waits to be delivered.
        public var deadline: Int64
        /// The bus name it was sent to; empty while it waits.
        public var destination: String

        public init(requestID: UInt64, requestedAt: Int64, deadline: Int64, destination: String) {
            self.requestID = requestID
            self.requestedAt = requestedAt
            self.deadline = deadline
            self.destination = destination
        }
    }

    public var key: TaskKey
    public var options: TaskOptions
    public var registeredAt: Int64
    public var lastFetch: Int64 = 0
    public var lastResult: FetchResult? = nil
    public var fetchCount: UInt64 = 0
    public var failureCount: UInt64 = 0
    /// Failed or expired fetches in a row; drives the backoff.
    public var consecutiveFailures: UInt32 = 0
    /// NoData answers in a row; stretches an adaptive task's interval.
    public var consecutiveNoData: UInt32 = 0
    public var dormant = false
    /// The unique name of the connection the task is bound to.
    public var binding: String? = nil
    public var outstanding: Outstanding? = nil

    public init(key: TaskKey, options: TaskOptions, registeredAt: Int64) {
        self.key = key
        self.options = options
        self.registeredAt = registeredAt
    }

    /// A fetch was requested but not yet delivered: the app had no connection.
    public var hasPendingFetch: Bool { outstanding.map { $0.deadline == 0 } ?? false }

    /// A fetch was delivered and not yet answered.
    public var hasRunningFetch: Bool { outstanding.map { $0.deadline > 0 } ?? false }
}

/// An app's own settings.
public struct AppSettings: Sendable, Equatable {
    public var app: AppKey
    /// The user's switch.
    public var enabled: Bool = true
    /// `SetMinimumInterval`, if the app called it.
    public var minimumInterval: UInt32? = nil

    public init(app: AppKey, enabled: Bool = true, minimumInterval: UInt32? = nil) {
        self.app = app
        self.enabled = enabled
        self.minimumInterval = minimumInterval
    }
}

/// One fetch in a task's history.
public struct HistoryEntry: Sendable, Equatable {
    public var requestID: UInt64
    public var task: TaskKey
    public var requestedAt: Int64
    /// 0 when it expired or has not finished.
    public var finishedAt: Int64
    /// nil while it is outstanding.
    public var result: FetchResult?

    public init(requestID: UInt64, task: TaskKey, requestedAt: Int64, finishedAt: Int64, result: FetchResult?) {
        self.requestID = requestID
        self.task = task
        self.requestedAt = requestedAt
        self.finishedAt = finishedAt
        self.result = result
    }
}

/// What `GetRegisteredTasks` and `ListTasks` report of a task.
public struct TaskInfo: Sendable, Equatable {
    public var key: TaskKey
    public var options: TaskOptions
    public var effectiveInterval: UInt32
    public var state: TaskState
    /// Why ``nextFetch`` is when it is.
    public var reason: TaskReason
    /// Unix µs, 0 if none; for a waiting task, when it fell due.
    public var nextFetch: Int64
    public var lastFetch: Int64
    public var lastResult: FetchResult?
    public var fetchCount: UInt64
    public var failureCount: UInt64
    public var consecutiveFailures: UInt32
    public var consecutiveNoData: UInt32
}
