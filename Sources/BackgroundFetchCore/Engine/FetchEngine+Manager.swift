/// The management interface, for `bgfetchctl` and settings panels. The host
/// has already decided which uid the caller may act for.
extension FetchEngine {
    /// Every task, or only those of `uid`, sorted by app and name.
    public func listTasks(uid: UInt32?) -> [TaskInfo] {
        let records = uid.map { uid in tasks.filter { $0.key.uid == uid }.values.flatMap(\.values) } ?? allTaskRecords()
        return records.sorted { $0.key < $1.key }.map(info(of:))
    }

    /// The user's switch for one app, or for every app of the user (`"*"`).
    public func setAppEnabled(_ app: AppKey, enabled: Bool) throws(FetchError) {
        if app.appID != AppKey.everyApp { try TaskName.validate(app.appID, what: "app id") }
        try changeSettings(of: app) { $0.enabled = enabled }
    }

    /// Fires another app's task now. Its binding is left as it is: with no
    /// connection, the fetch waits as pending (or starts the app by activation).
    public func triggerTask(_ key: TaskKey, wake: Bool = true) throws(FetchError) -> UInt64 {
        try TaskName.validate(key.app.appID, what: "app id")
        try TaskName.validate(key.name)
        var task = try existingTask(key)
        try requireAvailable(key.app)
        if wake { task.dormant = false }
        var change = makeChange()
        let id = requestFetch(&task, now: clock.now(), change: &change)
        change.batch.save(task)
        try commit(change)
        return id
    }

    /// The task's recent fetches, oldest first.
    public func history(_ key: TaskKey) throws(FetchError) -> [HistoryEntry] {
        try TaskName.validate(key.app.appID, what: "app id")
        try TaskName.validate(key.name)
        _ = try existingTask(key)
        return try store.history(of: key)
    }
}

/// An app as a settings panel shows it (`Manager.ListApps`).
public struct AppOverview: Sendable, Equatable {
    public var app: AppKey
    public var status: FetchStatus
    /// Its own switch (`"*"` aside).
    public var enabled: Bool
    public var restricted: Bool
    /// Its `SetMinimumInterval`, 0 if none.
    public var minimumInterval: UInt32
    public var taskCount: Int
}

extension FetchEngine {
    /// Every app of `uid` (every user's when nil) that has tasks or a stored
    /// setting, by uid and app id; the `"*"` switch is no app and is left out.
    public func listApps(uid: UInt32?) -> [AppOverview] {
        let known = Set(tasks.keys).union(apps.keys).filter { app in
            app.appID != AppKey.everyApp && (uid == nil || app.uid == uid)
        }
        return known.sorted().map { app in
            AppOverview(
                app: app, status: status(of: app), enabled: apps[app]?.enabled ?? true,
                restricted: config.restrictedApps.contains(app.appID), minimumInterval: apps[app]?.minimumInterval ?? 0,
                taskCount: tasks[app]?.count ?? 0)
        }
    }
}
