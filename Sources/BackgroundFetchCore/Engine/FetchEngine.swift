import Logging

/// The service's state and rules: tasks, app switches, scheduling and
/// delivery, with every change stored before it is acknowledged.
///
/// It knows nothing of D-Bus. Its host calls it on one thread, turns its
/// ``EngineEvent``s into signals, and arms one timer for ``nextDeadline()``.
public final class FetchEngine {
    public let config: DaemonConfig
    let store: TaskStore
    let clock: WallClock
    let logger: Logger

    /// Receives what to send, after each change is stored.
    public var onEvent: (EngineEvent) -> Void = { _ in }
    /// Whether an app can be started by bus activation (its id is an activatable name).
    public var isActivatable: (AppKey) -> Bool = { _ in false }

    var tasks: [AppKey: [String: TaskRecord]] = [:]
    var apps: [AppKey: AppSettings] = [:]
    private var tasksByConnection: [String: Set<TaskKey>] = [:]
    private var tasksByRequest: [UInt64: TaskKey] = [:]
    private var tasksPerUser: [UInt32: Int] = [:]
    private(set) var nextRequestID: UInt64 = 1
    private var cachedDeadline: Int64?? = nil
    /// Each task's next due time or expiry, for the timer and ``fireDue()``.
    var index = DueIndex()
    /// What the machine offers now (``updateConditions(_:)``).
    public internal(set) var conditions = MachineConditions.unknown
    /// Due tasks held back by the conditions: out of the index (they wake
    /// nothing) until the conditions change.
    var waiting: Set<TaskKey> = []
    /// Fetches delivered and not yet answered.
    public private(set) var runningFetchCount = 0
    /// Off while loading: tasks are indexed all at once afterwards.
    private var indexing = true
    /// Changes stored so far: ``trackingWrites(_:)`` compares it.
    private(set) var changesWritten = 0
    /// Between the two halves of a restore: the boot id and whether it is new.
    private var pendingRestore: (bootID: String, newBoot: Bool)?

    public init(config: DaemonConfig, store: TaskStore, clock: WallClock, logger: Logger = Logger(label: "bgfetch.engine")) {
        self.config = config
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    // MARK: Start

    /// Loads what was stored and applies the boot rules.
    ///
    /// After a new boot (the boot id changed) bindings are gone:
    /// `stopOnTerminate` tasks are removed, `startOnBoot` tasks carry on, the
    /// others turn `dormant`. Within the same boot, a binding whose connection
    /// is no longer on the bus (or is now another app) is treated as if the
    /// daemon had seen it leave.
    public func restore(bootID: String, isStillConnected: (String, AppKey) -> Bool) throws(FetchError) {
        let bindings = try loadForRestore(bootID: bootID)
        try finishRestore(departed: Set(bindings.filter { !isStillConnected($0.key, $0.value) }.keys))
    }

    /// The first half of ``restore(bootID:isStillConnected:)``, for a host
    /// that asks the bus without blocking: loads what was stored and returns
    /// the connections tasks are bound to, each with its app, which the host
    /// checks before ``finishRestore(departed:)`` (none after a new boot).
    public func loadForRestore(bootID: String) throws(FetchError) -> [String: AppKey] {
        let state = try load()
        let newBoot = state.bootID != bootID
        pendingRestore = (bootID, newBoot)
        if newBoot {
            if state.bootID != nil { logger.info("new boot: resuming startOnBoot tasks only", metadata: ["boot": "\(bootID)"]) }
            return [:]
        }
        var bindings: [String: AppKey] = [:]
        for (binding, keys) in tasksByConnection {
            if let app = keys.first?.app { bindings[binding] = app }
        }
        return bindings
    }

    /// The second half: applies the boot rules, treating the connections in
    /// `departed` (gone from the bus, or now another app) as if the daemon
    /// had seen them leave.
    public func finishRestore(departed: Set<String>) throws(FetchError) {
        guard let (bootID, newBoot) = pendingRestore else { preconditionFailure("finishRestore without loadForRestore") }
        pendingRestore = nil
        var change = makeChange()
        if newBoot {
            change.batch.bootID = bootID
            change.batch.newBoot = true
        } else {
            change.batch.departedConnections = departed.intersection(tasksByConnection.keys)
        }
        // The store applies these set-based; memory follows the same rules.
        try store.write(change.batch)
        var removed: [TaskKey] = []
        var changed: [TaskRecord] = []
        for byName in tasks.values {
            for task in byName.values {
                if newBoot {
                    if task.options.stopOnTerminate { removed.append(task.key) } else { changed.append(NewBoot.apply(to: task)) }
                } else if let binding = task.binding, change.batch.departedConnections.contains(binding) {
                    if task.options.stopOnTerminate {
                        removed.append(task.key)
                    } else {
                        var unbound = task
                        unbound.binding = nil
                        changed.append(unbound)
                    }
                }
            }
        }
        for key in removed { remove(key) }
        for task in changed { put(task) }
        cachedDeadline = nil
        logger.info("restored", metadata: ["tasks": "\(tasksByKeyCount)", "apps": "\(apps.count)"])
    }

    /// Replaces what is in memory with what the store holds: after a group
    /// commit failed, the store was rolled back and memory must follow.
    public func reload() throws(FetchError) {
        _ = try load()
    }

    private func load() throws(FetchError) -> StoredState {
        tasks.removeAll()
        apps.removeAll()
        tasksByConnection.removeAll()
        tasksByRequest.removeAll()
        tasksPerUser.removeAll()
        index.removeAll()
        waiting.removeAll()
        runningFetchCount = 0
        // Tasks go straight into memory as they are read; they are indexed
        // once the apps, whose switches and intervals they depend on, are known.
        indexing = false
        let state: StoredState
        do {
            state = try store.load { put($0) }
        } catch {
            indexing = true
            throw error
        }
        indexing = true
        for app in state.apps { apps[app.app] = app }
        reindexAll()
        nextRequestID = state.nextRequestID
        cachedDeadline = nil
        return state
    }

    var tasksByKeyCount: Int { tasksPerUser.values.reduce(0, +) }

    // MARK: Rules shared by the calls

    /// The status of `app`: the administrator's restriction wins over the
    /// user's switches.
    public func status(of app: AppKey) -> FetchStatus {
        // Asked on most calls: an empty set is not hashed into.
        if !config.restrictedApps.isEmpty, config.restrictedApps.contains(app.appID) { return .restricted }
        if apps[app]?.enabled == false { return .denied }
        if apps[AppKey(uid: app.uid, appID: AppKey.everyApp)]?.enabled == false { return .denied }
        return .available
    }

    func requireAvailable(_ app: AppKey) throws(FetchError) {
        switch status(of: app) {
        case .available: return
        case .denied: throw FetchError(.denied, "background fetch is switched off for app '\(CallerText.shown(app.appID))'")
        case .restricted:
            throw FetchError(.restricted, "the administrator restricts background fetch for app '\(CallerText.shown(app.appID))'")
        }
    }

    /// The interval the options and floors give.
    public func effectiveInterval(of task: TaskRecord) -> UInt32 {
        max(task.options.minimumInterval, apps[task.key.app]?.minimumInterval ?? 0, config.minimumIntervalFloor)
    }

    /// When the task's next fetch is due: its last fetch (or its
    /// registration) plus the effective interval, backed off after failures
    /// or, for an adaptive task, stretched by NoData answers in a row.
    public func dueTime(of task: TaskRecord) -> Int64 {
        (task.lastFetch > 0 ? task.lastFetch : task.registeredAt) + nextDelay(of: task).delay
    }

    /// How long after its last fetch the task is due, and why: the
    /// effective interval, backed off, or stretched by NoData answers.
    func nextDelay(of task: TaskRecord) -> (delay: Int64, reason: TaskReason) {
        let interval = effectiveInterval(of: task)
        if task.consecutiveFailures > 0 {
            return (Backoff.delay(interval: interval, consecutiveFailures: task.consecutiveFailures), .backoff)
        }
        if task.options.adaptive {
            let stretched = Stretch.delay(interval: interval, consecutiveNoData: task.consecutiveNoData)
            if stretched > .seconds(interval) { return (stretched, .noNewData) }
        }
        return (.seconds(interval), .interval)
    }

    func state(of task: TaskRecord) -> TaskState {
        if task.hasRunningFetch { return .running }
        if task.dormant { return .dormant }
        if status(of: task.key.app) != .available { return .paused }
        if task.hasPendingFetch { return .pending }
        if waiting.contains(task.key) { return .waiting }
        return .scheduled
    }

    /// Why a due fetch of `task` must wait now, or nil if it may go.
    func holdBack(_ task: TaskRecord) -> TaskReason? {
        conditions.holdBack(task.options.constraints, deferInPowerSaver: config.deferInPowerSaver)
    }

    /// Why the task's next fetch is when it is.
    func reason(of task: TaskRecord, state: TaskState, now: Int64) -> TaskReason {
        switch state {
        case .running: return .running
        case .pending: return .pending
        case .dormant: return .dormant
        case .paused: return .paused
        case .waiting: return holdBack(task) ?? .catchUp
        case .scheduled:
            let due = dueTime(of: task)
            let window = Int64.seconds(effectiveInterval(of: task)) / 10
            // Missed by more than its window: the daemon was down or the machine slept.
            if due + window < now { return .catchUp }
            // In the next wake-up, which a later fetch moved within its window.
            if let wake = nextDeadline(), wake > due, wake <= due + window { return .batched }
            return due <= now ? .catchUp : nextDelay(of: task).reason
        }
    }

    func info(of task: TaskRecord) -> TaskInfo {
        let state = state(of: task)
        let next = state == .scheduled || state == .waiting ? dueTime(of: task) : 0
        return TaskInfo(
            key: task.key, options: task.options, effectiveInterval: effectiveInterval(of: task), state: state,
            reason: reason(of: task, state: state, now: clock.now()), nextFetch: next, lastFetch: task.lastFetch,
            lastResult: task.lastResult, fetchCount: task.fetchCount, failureCount: task.failureCount,
            consecutiveFailures: task.consecutiveFailures, consecutiveNoData: task.consecutiveNoData)
    }

    func task(_ key: TaskKey) -> TaskRecord? { tasks[key.app]?[key.name] }

    func existingTask(_ key: TaskKey) throws(FetchError) -> TaskRecord {
        guard let task = task(key) else { throw .noSuchTask(key) }
        return task
    }

    func allTaskRecords() -> [TaskRecord] { tasks.values.flatMap(\.values) }

    // MARK: Changing state

    func makeChange() -> EngineChange { EngineChange(nextRequestID: nextRequestID) }

    /// Stores `change`, then applies it in memory, then sends its events.
    /// If storing fails nothing changes.
    func commit(_ change: EngineChange) throws(FetchError) {
        try store.write(change.batch)
        if !change.batch.isEmpty { changesWritten += 1 }
        for key in change.batch.deletedTasks { remove(key) }
        for task in change.batch.savedTasks.values { put(task) }
        for app in change.batch.savedApps.values { apps[app.app] = app }
        // A switch or an app's interval moves every task of the app.
        if !change.batch.savedApps.isEmpty { reindexAll() }
        if let next = change.batch.nextRequestID { nextRequestID = next }
        cachedDeadline = nil
        for event in change.events { onEvent(event) }
    }

    private func put(_ task: TaskRecord) {
        if let old = self.task(task.key) {
            unindex(old)
        } else {
            tasksPerUser[task.key.app.uid, default: 0] += 1
        }
        tasks[task.key.app, default: [:]][task.key.name] = task
        // A changed task is looked at again when it is due.
        waiting.remove(task.key)
        if task.hasRunningFetch { runningFetchCount += 1 }
        if let binding = task.binding { tasksByConnection[binding, default: []].insert(task.key) }
        if let outstanding = task.outstanding { tasksByRequest[outstanding.requestID] = task.key }
        if indexing { reindex(task) }
    }

    /// Records when `task` next needs the engine: its fetch's expiry, or its
    /// due time while it may fire, or nothing.
    func reindex(_ task: TaskRecord) {
        if let outstanding = task.outstanding {
            index.set(task.key, time: outstanding.deadline > 0 ? outstanding.deadline : nil, kind: .expiry)
        } else if isSchedulable(task) {
            // A waiting task stays out of the index only while something
            // still holds it back; once nothing does (the conditions changed
            // while it was paused, say), it goes back to its due time.
            if waiting.contains(task.key) {
                if holdBack(task) != nil { return index.remove(task.key) }
                waiting.remove(task.key)
            }
            index.set(task.key, time: dueTime(of: task), kind: .due(interval: effectiveInterval(of: task)))
        } else {
            index.remove(task.key)
        }
    }

    func reindexAll() {
        index.removeAll()
        for byName in tasks.values {
            for task in byName.values { reindex(task) }
        }
    }

    private func remove(_ key: TaskKey) {
        guard let old = task(key) else { return }
        unindex(old)
        index.remove(key)
        waiting.remove(key)
        tasks[key.app]?[key.name] = nil
        if tasks[key.app]?.isEmpty == true { tasks[key.app] = nil }
        tasksPerUser[key.app.uid, default: 1] -= 1
        if tasksPerUser[key.app.uid] == 0 { tasksPerUser[key.app.uid] = nil }
    }

    private func unindex(_ task: TaskRecord) {
        if let binding = task.binding {
            tasksByConnection[binding]?.remove(task.key)
            if tasksByConnection[binding]?.isEmpty == true { tasksByConnection[binding] = nil }
        }
        if let outstanding = task.outstanding { tasksByRequest[outstanding.requestID] = nil }
        if task.hasRunningFetch { runningFetchCount -= 1 }
    }

    /// Stores `change` from a bus event that has no caller to answer: a
    /// failure is logged (naming `what` and the task) and nothing changes.
    func commitOrLog(_ change: EngineChange, _ what: String, task key: TaskKey? = nil) {
        do {
            try commit(change)
        } catch {
            logger.error("cannot store \(what)", metadata: ["task": "\(key.map { "\($0)" } ?? "-")", "error": "\(error)"])
        }
    }

    /// Changes an app's settings and stores them, unless nothing changed.
    func changeSettings(of app: AppKey, _ edit: (inout AppSettings) -> Void) throws(FetchError) {
        var settings = apps[app] ?? AppSettings(app: app)
        edit(&settings)
        guard settings != apps[app] ?? AppSettings(app: app) else { return }
        var change = makeChange()
        change.batch.savedApps[app] = settings
        try commit(change)
    }

    func taskCount(uid: UInt32) -> Int { tasksPerUser[uid] ?? 0 }
    func taskKey(forRequest id: UInt64) -> TaskKey? { tasksByRequest[id] }
    var tasksByRequestKeys: Dictionary<UInt64, TaskKey>.Values { tasksByRequest.values }
    func taskKeys(boundTo connection: String) -> Set<TaskKey> { tasksByConnection[connection] ?? [] }

    /// Forgets the cached deadline after the index changed outside a commit.
    func cachedDeadlineNeedsRecomputing() { cachedDeadline = nil }

    /// The earliest time the engine has something to do, cached until the next change.
    public func nextDeadline() -> Int64? {
        if let cached = cachedDeadline { return cached }
        let computed = index.nextDeadline()
        cachedDeadline = .some(computed)
        return computed
    }

    /// Every connection that has tasks bound to it.
    public var boundConnections: [String] { Array(tasksByConnection.keys) }
}
