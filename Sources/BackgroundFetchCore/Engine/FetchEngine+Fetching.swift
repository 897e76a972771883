/// Requesting, delivering, finishing and expiring fetches.
extension FetchEngine {
    /// Opens a fetch for `task` unless one is open, and delivers it if it can
    /// (an open one too, if it is still waiting to be delivered).
    /// Returns the request id.
    @discardableResult
    func requestFetch(_ task: inout TaskRecord, now: Int64, change: inout EngineChange) -> UInt64 {
        if let outstanding = task.outstanding {
            deliverIfPossible(&task, now: now, change: &change)
            return outstanding.requestID
        }
        let id = change.allocateRequestID()
        task.outstanding = TaskRecord.Outstanding(requestID: id, requestedAt: now, deadline: 0, destination: "")
        change.batch.history[id] = HistoryEntry(requestID: id, task: task.key, requestedAt: now, finishedAt: 0, result: nil)
        deliverIfPossible(&task, now: now, change: &change)
        return id
    }

    /// Sends a waiting fetch to the task's connection, or starts the app by
    /// bus activation (unless its `launch` is `never`); with neither, the
    /// fetch stays pending.
    func deliverIfPossible(_ task: inout TaskRecord, now: Int64, change: inout EngineChange) {
        guard var outstanding = task.outstanding, outstanding.deadline == 0 else { return }
        let event: EngineEvent
        if let binding = task.binding {
            outstanding.destination = binding
            event = .fetchRequested(destination: binding, task: task.key, requestID: outstanding.requestID)
        } else if task.options.launch == .activate, isActivatable(task.key.app) {
            outstanding.destination = task.key.app.appID
            event = .activateAndRequest(task: task.key, requestID: outstanding.requestID)
        } else {
            return
        }
        // Started by activation, the app is reached only when the start call
        // answers (then ``delivered(task:requestID:)`` restarts the clock);
        // until then the start itself has its time on top of the timeout.
        let startAllowance: Int64 = event.isActivation ? .seconds(Self.activationTimeout) : 0
        outstanding.deadline = now + .seconds(config.fetchTimeout) + startAllowance
        task.outstanding = outstanding
        task.lastFetch = now
        task.fetchCount += 1
        change.events.append(event)
        change.batch.save(task)
    }

    /// Closes the task's open fetch with `result`; `finishedAt` 0 means it expired.
    func finishOutstanding(_ task: inout TaskRecord, result: FetchResult, finishedAt: Int64, change: inout EngineChange) {
        guard let outstanding = task.outstanding else { return }
        task.outstanding = nil
        task.lastResult = result
        switch result {
        case .failed:
            task.failureCount += 1
            task.consecutiveFailures += 1
            task.consecutiveNoData = 0  // the backoff takes over; the run of NoData is broken
        case .noData:
            task.consecutiveFailures = 0
            task.consecutiveNoData += 1
        case .newData:
            task.consecutiveFailures = 0
            task.consecutiveNoData = 0
        }
        change.batch.history[outstanding.requestID] = HistoryEntry(
            requestID: outstanding.requestID, task: task.key, requestedAt: outstanding.requestedAt,
            finishedAt: finishedAt, result: result)
        change.batch.save(task)
    }

    /// A task that may fire on schedule now.
    func isSchedulable(_ task: TaskRecord) -> Bool {
        !task.dormant && task.outstanding == nil && status(of: task.key.app) == .available
    }

    /// How many fetches one ``fireDue()`` handles: with thousands due at
    /// once, each slice is stored and sent before the next is started, and
    /// other calls are served in between.
    public static let fetchesPerSlice = 256

    /// Expires fetches past their deadline and fires tasks due by now, one
    /// slice of them; if more are due, ``nextDeadline()`` is already past.
    /// The host calls it when the timer for ``nextDeadline()`` goes off.
    public func fireDue() throws(FetchError) {
        let now = clock.now()
        let (expiring, due) = index.takeDue(by: now, limit: Self.fetchesPerSlice)
        // Whatever happens below, every task taken out goes back in with its time.
        defer {
            for key in expiring + due {
                if let task = task(key) { reindex(task) }
            }
        }
        var change = makeChange()
        for key in expiring {
            guard var task = task(key), let outstanding = task.outstanding, outstanding.deadline > 0,
                outstanding.deadline <= now
            else { continue }
            finishOutstanding(&task, result: .failed, finishedAt: 0, change: &change)
            change.events.append(
                .fetchExpired(destination: outstanding.destination, task: task.key, requestID: outstanding.requestID))
            change.events.append(.fetchFinished(task: task.key, requestID: outstanding.requestID, result: .failed))
        }
        for key in due {
            guard var task = change.batch.savedTasks[key] ?? task(key), isSchedulable(task), dueTime(of: task) <= now
            else { continue }
            if holdBack(task) != nil {
                waiting.insert(key)  // the deferred reindex leaves it out of the index
                continue
            }
            requestFetch(&task, now: now, change: &change)
            change.batch.save(task)
        }
        try commit(change)
    }

    /// The machine's conditions changed: every waiting task they now let go
    /// fires, all in this one call (one wake-up, one commit). Deferral is not
    /// a failure: nothing backs off. Returns how many fired.
    @discardableResult
    public func updateConditions(_ new: MachineConditions) throws(FetchError) -> Int {
        conditions = new  // tasks not yet due are looked at when they are
        guard !waiting.isEmpty else { return 0 }
        let now = clock.now()
        var change = makeChange()
        var released: [TaskKey] = []
        for key in waiting {
            guard var task = task(key), isSchedulable(task), holdBack(task) == nil else { continue }
            released.append(key)
            requestFetch(&task, now: now, change: &change)
            change.batch.save(task)
        }
        guard !released.isEmpty else { return 0 }
        do {
            try commit(change)
        } catch {
            // Not sent: back to their due times, so the next look (the timer,
            // at once) tries again rather than the next change.
            for key in released {
                waiting.remove(key)
                if let task = task(key) { reindex(task) }
            }
            cachedDeadlineNeedsRecomputing()
            throw error
        }
        return released.count
    }

    /// The app was started and the fetch handed to it: its timeout starts now.
    public func delivered(task key: TaskKey, requestID: UInt64) {
        guard var task = task(key), var outstanding = task.outstanding, outstanding.requestID == requestID,
            outstanding.deadline > 0
        else { return }
        outstanding.deadline = clock.now() + .seconds(config.fetchTimeout)
        task.outstanding = outstanding
        var change = makeChange()
        change.batch.save(task)
        commitOrLog(change, "a delivery", task: key)
    }

    /// How long starting an app may take, in seconds (the host's start call's timeout).
    public static let activationTimeout: UInt32 = 30

    /// Starting the task's app failed: the fetch waits as pending, unless the
    /// app connected and registered meanwhile (then it goes there).
    public func activationFailed(task key: TaskKey, requestID: UInt64) {
        guard var task = task(key), var outstanding = task.outstanding, outstanding.requestID == requestID else { return }
        outstanding.deadline = 0
        outstanding.destination = ""
        task.outstanding = outstanding
        var change = makeChange()
        if task.binding != nil { deliverIfPossible(&task, now: clock.now(), change: &change) }
        change.batch.save(task)
        commitOrLog(change, "a failed activation", task: key)
    }

    /// The apps with a fetch delivered and not yet answered, for the sleep
    /// inhibitor's `why`.
    public func appsWithRunningFetches() -> [AppKey] {
        var apps: Set<AppKey> = []
        for key in tasksByRequestKeys {
            if let task = task(key), task.hasRunningFetch { apps.insert(key.app) }
        }
        return apps.sorted { ($0.uid, $0.appID) < ($1.uid, $1.appID) }
    }
}
