/// What the service reads back at start.
public struct StoredState: Sendable {
    public var tasks: [TaskRecord] = []
    public var apps: [AppSettings] = []
    public var bootID: String? = nil
    public var nextRequestID: UInt64 = 1

    public init() {}
}

/// One atomic change to the store: all of it is written, or none.
public struct StoreBatch: Sendable {
    public var savedTasks: [TaskKey: TaskRecord] = [:]
    public var deletedTasks: Set<TaskKey> = []
    public var savedApps: [AppKey: AppSettings] = [:]
    /// Rows written by request id (insert or replace).
    public var history: [UInt64: HistoryEntry] = [:]
    public var nextRequestID: UInt64? = nil
    public var bootID: String? = nil
    /// Applied first, to every task at once (see ``NewBoot``): after a new
    /// boot, `stopOnTerminate` tasks go, fetches in flight count as Failed,
    /// bindings are dropped and tasks without `startOnBoot` turn dormant.
    public var newBoot = false
    /// Applied first: connections that left while the daemon was down; their
    /// `stopOnTerminate` tasks go, the others lose their binding.
    public var departedConnections: Set<String> = []

    public init() {}

    public var isEmpty: Bool {
        savedTasks.isEmpty && deletedTasks.isEmpty && savedApps.isEmpty && history.isEmpty
            && nextRequestID == nil && bootID == nil && !newBoot && departedConnections.isEmpty
    }

    public mutating func save(_ task: TaskRecord) {
        deletedTasks.remove(task.key)
        savedTasks[task.key] = task
    }

    public mutating func delete(_ key: TaskKey) {
        savedTasks[key] = nil
        deletedTasks.insert(key)
    }
}

/// Where tasks, app settings and history live between runs.
///
/// Its unit of work is a *round*: between ``beginRound()`` and
/// ``commitRound()`` batches share one transaction and become durable
/// together, with one sync to disk. Outside a round each batch is durable
/// on its own when ``write(_:)`` returns.
public protocol TaskStore: AnyObject {
    /// Reads everything back; each task goes to `eachTask` as it is read (the
    /// returned state's `tasks` stays empty), so a large store is never held
    /// twice in memory.
    func load(eachTask: (TaskRecord) -> Void) throws(FetchError) -> StoredState
    /// Writes `batch`, all of it or (throwing) none of it. Inside a round it
    /// is durable only once the round commits; outside one, on return.
    func write(_ batch: StoreBatch) throws(FetchError)
    /// Opens a round; does nothing if one is open.
    func beginRound()
    /// Makes the round's batches durable; on failure every one of them is
    /// undone and it throws. Does nothing if no round is open.
    func commitRound() throws(FetchError)
    /// The task's recent fetches, oldest first.
    func history(of task: TaskKey) throws(FetchError) -> [HistoryEntry]
}

extension TaskStore {
    /// Everything, tasks included, in one value: for tests and tools.
    public func load() throws(FetchError) -> StoredState {
        var tasks: [TaskRecord] = []
        var state = try load { tasks.append($0) }
        state.tasks = tasks
        return state
    }
}

/// What a new boot does to a task that survives it (`stopOnTerminate`
/// false), in one place for the engine's memory and the stores.
public enum NewBoot {
    public static func apply(to task: TaskRecord) -> TaskRecord {
        var task = task
        task.binding = nil
        if let outstanding = task.outstanding, outstanding.deadline > 0 {
            // The fetch was in flight when the machine went down: Failed.
            task.outstanding = nil
            task.lastResult = .failed
            task.failureCount += 1
            task.consecutiveFailures += 1
        }
        // A fetch still waiting to be delivered is kept: it goes out when the
        // app registers the task again.
        if !task.options.startOnBoot { task.dormant = true }
        return task
    }
}
