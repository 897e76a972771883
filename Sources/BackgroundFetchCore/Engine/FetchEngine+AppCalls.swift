/// The app interface: every call acts on the caller's own tasks.
extension FetchEngine {
    public func register(_ caller: Caller, name: String, options: TaskOptions) throws(FetchError) {
        try TaskName.validate(name)
        try options.validate()
        try requireAvailable(caller.app)
        let key = TaskKey(app: caller.app, name: name)
        let now = clock.now()
        var change = makeChange()
        var task: TaskRecord
        if let existing = self.task(key) {
            // The same registration again from the same connection changes
            // nothing: nothing to store (apps re-register at every start).
            if existing.options == options, existing.binding == caller.connection, !existing.dormant,
                !existing.hasPendingFetch
            {
                return
            }
            task = existing
            task.options = options
        } else {
            guard (tasks[caller.app]?.count ?? 0) < config.tasksPerApp else {
                throw FetchError(.limitExceeded, "app '\(CallerText.shown(caller.app.appID))' already has \(config.tasksPerApp) tasks, the most allowed")
            }
            guard taskCount(uid: caller.app.uid) < config.tasksPerUser else {
                throw FetchError(.limitExceeded, "user \(caller.app.uid) already has \(config.tasksPerUser) tasks, the most allowed")
            }
            task = TaskRecord(key: key, options: options, registeredAt: now)
        }
        task.binding = caller.connection
        task.dormant = false
        change.batch.save(task)
        deliverIfPossible(&task, now: now, change: &change)
        try commit(change)
        logger.info("registered", metadata: key.logMetadata(["interval": "\(options.minimumInterval)"]))
    }

    public func unregister(_ caller: Caller, name: String) throws(FetchError) {
        try TaskName.validate(name)
        let key = TaskKey(app: caller.app, name: name)
        _ = try existingTask(key)
        var change = makeChange()
        change.batch.delete(key)
        try commit(change)
        logger.info("unregistered", metadata: key.logMetadata())
    }

    public func unregisterAll(_ caller: Caller) throws(FetchError) {
        var change = makeChange()
        let keys = (tasks[caller.app]?.keys ?? [:].keys).map { TaskKey(app: caller.app, name: $0) }
        for key in keys { change.batch.delete(key) }
        try commit(change)
        for key in keys { logger.info("unregistered", metadata: key.logMetadata()) }
    }

    public func isRegistered(_ caller: Caller, name: String) throws(FetchError) -> Bool {
        try TaskName.validate(name)
        return task(TaskKey(app: caller.app, name: name)) != nil
    }

    /// The app's tasks, sorted by name.
    public func tasks(of app: AppKey) -> [TaskInfo] {
        (tasks[app]?.values ?? [:].values).sorted { $0.key.name < $1.key.name }.map(info(of:))
    }

    public func setMinimumInterval(_ app: AppKey, seconds: UInt32) throws(FetchError) {
        guard TaskOptions.intervalRange.contains(seconds) else {
            throw .invalidArgs("minimum interval \(seconds) is outside 1–604800 seconds")
        }
        try changeSettings(of: app) { $0.minimumInterval = seconds }
    }

    public func finish(_ caller: Caller, requestID: UInt64, result: FetchResult) throws(FetchError) {
        guard let key = taskKey(forRequest: requestID), key.app == caller.app, var task = task(key),
            let outstanding = task.outstanding, outstanding.requestID == requestID
        else { throw .unknownRequest(requestID) }
        var change = makeChange()
        if outstanding.deadline == 0 {
            // Answered while still pending (the app learnt the id another way):
            // it counts as delivered now.
            task.lastFetch = clock.now()
            task.fetchCount += 1
        }
        finishOutstanding(&task, result: result, finishedAt: clock.now(), change: &change)
        change.events.append(.fetchFinished(task: key, requestID: requestID, result: result))
        try commit(change)
        logger.info("answered", metadata: key.logMetadata(["request": "\(requestID)", "result": "\(result)"]))
    }

    /// Binds the task to the caller, wakes it if dormant and fires it now;
    /// returns the open request's id if one is open already.
    public func trigger(_ caller: Caller, name: String) throws(FetchError) -> UInt64 {
        try TaskName.validate(name)
        var task = try existingTask(TaskKey(app: caller.app, name: name))
        try requireAvailable(caller.app)
        task.binding = caller.connection
        task.dormant = false
        var change = makeChange()
        let id = requestFetch(&task, now: clock.now(), change: &change)
        change.batch.save(task)
        try commit(change)
        return id
    }

    /// The connection left the bus: its `stopOnTerminate` tasks go, the others
    /// lose their binding.
    public func connectionClosed(_ connection: String) {
        let keys = taskKeys(boundTo: connection)
        guard !keys.isEmpty else { return }
        var change = makeChange()
        for key in keys {
            guard var task = task(key) else { continue }
            if task.options.stopOnTerminate {
                change.batch.delete(key)
            } else {
                task.binding = nil
                change.batch.save(task)
            }
        }
        commitOrLog(change, "a departed connection (\(connection))")
    }
}
