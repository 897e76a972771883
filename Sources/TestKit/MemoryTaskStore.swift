import BackgroundFetchCore

/// A store that keeps everything in memory: for tests of the engine alone.
public final class MemoryTaskStore: TaskStore {
    public private(set) var state = StoredState()
    public private(set) var historyRows: [UInt64: HistoryEntry] = [:]
    /// Batches written.
    public private(set) var commits = 0
    /// Rounds committed.
    public private(set) var rounds = 0
    private var roundOpen = false
    /// When set, the next commit fails with it.
    public var failNextCommit: FetchError?

    public init() {}

    public func load(eachTask: (TaskRecord) -> Void) throws(FetchError) -> StoredState {
        state.tasks.forEach(eachTask)
        var copy = state
        copy.tasks = []
        return copy
    }

    public func beginRound() { roundOpen = true }

    public func commitRound() throws(FetchError) {
        guard roundOpen else { return }
        roundOpen = false
        rounds += 1
    }

    public func write(_ batch: StoreBatch) throws(FetchError) {
        if let failure = failNextCommit {
            failNextCommit = nil
            throw failure
        }
        commits += 1
        var tasks = Dictionary(uniqueKeysWithValues: state.tasks.map { ($0.key, $0) })
        for (key, task) in tasks {
            if batch.newBoot {
                guard !task.options.stopOnTerminate else {
                    tasks[key] = nil
                    historyRows = historyRows.filter { $0.value.task != key }
                    continue
                }
                if let outstanding = task.outstanding, outstanding.deadline > 0 {
                    historyRows[outstanding.requestID]?.finishedAt = 0
                    historyRows[outstanding.requestID]?.result = .failed
                }
                tasks[key] = NewBoot.apply(to: task)
            } else if let binding = task.binding, batch.departedConnections.contains(binding) {
                if task.options.stopOnTerminate {
                    tasks[key] = nil
                    historyRows = historyRows.filter { $0.value.task != key }
                } else {
                    tasks[key]?.binding = nil
                }
            }
        }
        for key in batch.deletedTasks {
            tasks[key] = nil
            historyRows = historyRows.filter { $0.value.task != key }
        }
        for (key, task) in batch.savedTasks { tasks[key] = task }
        state.tasks = tasks.values.sorted { $0.key < $1.key }
        var apps = Dictionary(uniqueKeysWithValues: state.apps.map { ($0.app, $0) })
        for (key, app) in batch.savedApps { apps[key] = app }
        state.apps = apps.values.sorted { $0.app < $1.app }
        for (id, row) in batch.history { historyRows[id] = row }
        if let next = batch.nextRequestID { state.nextRequestID = next }
        if let boot = batch.bootID { state.bootID = boot }
    }

    public func history(of task: TaskKey) throws(FetchError) -> [HistoryEntry] {
        historyRows.values.filter { $0.task == task }.sorted { $0.requestID < $1.requestID }
    }
}
