import Testing

@testable import BackgroundFetchCore
import TestKit

/// Status: the administrator's restriction, the user's switches, paused tasks.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineStatusTests {
    @Test func restrictedConfigurationWinsOverTheUsersSwitch() throws {
        var config = DaemonConfig()
        config.restrictedApps = ["org.example.Tracker"]
        let h = try EngineHarness(config: config)
        let tracker = AppKey(uid: 1000, appID: "org.example.Tracker")
        let trackerOtherUser = AppKey(uid: 1001, appID: "org.example.Tracker")
        #expect(h.engine.status(of: tracker) == .restricted)
        #expect(h.engine.status(of: trackerOtherUser) == .restricted)
        #expect(h.engine.status(of: mailApp) == .available)

        try h.engine.setAppEnabled(tracker, enabled: false)
        #expect(h.engine.status(of: tracker) == .restricted, "restricted, not denied")
        try h.engine.setAppEnabled(tracker, enabled: true)
        #expect(h.engine.status(of: tracker) == .restricted, "the user cannot switch a restriction off")
        try h.engine.setAppEnabled(AppKey(uid: 1000, appID: AppKey.everyApp), enabled: false)
        #expect(h.engine.status(of: tracker) == .restricted)

        let error = expectFetchError(.restricted) { () throws(FetchError) in
            try h.engine.register(Caller(app: tracker, connection: ":1.50"), name: "t", options: TaskOptions())
        }
        #expect(error?.message.contains("org.example.Tracker") == true)
        #expect(h.engine.tasks(of: tracker).isEmpty)
    }

    @Test func theAppsSwitchDeniesIt() throws {
        let h = try EngineHarness()
        try h.engine.setAppEnabled(mailApp, enabled: false)
        #expect(h.engine.status(of: mailApp) == .denied)
        #expect(h.engine.status(of: newsApp) == .available)
        #expect(h.engine.status(of: otherUserApp) == .available, "another uid's app of the same id is not touched")
        #expect(try h.memoryStore.state.apps.contains(AppSettings(app: mailApp, enabled: false)))
        expectFetchError(.denied) { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions())
        }
        #expect(try !h.engine.isRegistered(mail, name: "t"))
        try h.engine.setAppEnabled(mailApp, enabled: true)
        #expect(h.engine.status(of: mailApp) == .available)
        try h.engine.register(mail, name: "t", options: TaskOptions())
    }

    @Test func theEveryAppSwitchDeniesAllOfTheUsersAppsAndLeavesPerAppSwitches() throws {
        let h = try EngineHarness()
        let every = AppKey(uid: 1000, appID: AppKey.everyApp)
        try h.engine.setAppEnabled(newsApp, enabled: false)
        try h.engine.setAppEnabled(every, enabled: false)
        #expect(h.engine.status(of: mailApp) == .denied)
        #expect(h.engine.status(of: newsApp) == .denied)
        #expect(h.engine.status(of: otherUserApp) == .available, "only the uid's own apps")
        expectFetchError(.denied) { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions())
        }

        try h.engine.setAppEnabled(every, enabled: true)
        #expect(h.engine.status(of: mailApp) == .available)
        #expect(h.engine.status(of: newsApp) == .denied, "turning \"*\" on leaves the per-app switch off")
    }

    @Test func setAppEnabledChecksTheAppID() throws {
        let h = try EngineHarness()
        let commits = try h.memoryStore.commits
        expectFetchError(.invalidArgs) { () throws(FetchError) in
            try h.engine.setAppEnabled(AppKey(uid: 1000, appID: "bad/app"), enabled: false)
        }
        expectFetchError(.invalidArgs) { () throws(FetchError) in
            try h.engine.setAppEnabled(AppKey(uid: 1000, appID: ""), enabled: false)
        }
        #expect(try h.memoryStore.commits == commits)
    }

    @Test func tasksArePausedWhileTheAppIsNotAvailableAndResumeAfterwards() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        try h.engine.register(news, name: "t", options: TaskOptions(minimumInterval: 600))
        try h.engine.setAppEnabled(mailApp, enabled: false)
        var info = try h.info(mail, "t")
        #expect(info.state == .paused)
        #expect(info.nextFetch == 0)
        #expect(try h.info(news, "t").state == .scheduled)

        // Past many due times: only the other app fires.
        let first = try h.runTimer()
        #expect(try singleRequest(first).task == key(news, "t"))
        try h.engine.finish(news, requestID: try singleRequest(first).requestID, result: .noData)
        try h.engine.setAppEnabled(newsApp, enabled: false)
        #expect(h.engine.nextDeadline() == nil, "nothing to wake for while everything is paused")
        h.advance(seconds: 6000)
        try h.engine.fireDue()
        #expect(h.events.take().filter { if case .fetchRequested = $0 { true } else { false } }.isEmpty)
        info = try h.info(mail, "t")
        #expect(info.state == .paused)
        #expect(info.fetchCount == 0)

        // Switched on again: the missed fetch goes out once, at the next timer.
        try h.engine.setAppEnabled(mailApp, enabled: true)
        #expect(try h.info(mail, "t").state == .scheduled)
        let deadline = try #require(h.engine.nextDeadline())
        #expect(deadline <= h.now)
        try h.engine.fireDue()
        #expect(try singleRequest(h.events.take()).task == key(mail, "t"))
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty)
    }

    @Test func aFetchRunningWhenTheAppIsSwitchedOffStillExpires() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let request = try singleRequest(try h.runTimer())
        try h.engine.setAppEnabled(mailApp, enabled: false)
        #expect(try h.info(mail, "t").state == .running)
        let events = try h.runTimer()
        #expect(events.contains(.fetchExpired(destination: mail.connection, task: key(mail, "t"), requestID: request.requestID)))
        #expect(try h.info(mail, "t").state == .paused)
    }
}

/// Per-app and per-user limits.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineLimitTests {
    @Test func tasksPerApp() throws {
        var config = DaemonConfig()
        config.tasksPerApp = 2
        let h = try EngineHarness(config: config)
        try h.engine.register(mail, name: "a", options: TaskOptions())
        try h.engine.register(mail, name: "b", options: TaskOptions())
        let commits = try h.memoryStore.commits
        let error = expectFetchError(.limitExceeded) { () throws(FetchError) in
            try h.engine.register(mail, name: "c", options: TaskOptions())
        }
        #expect(error?.message.contains("2") == true)
        #expect(try !h.engine.isRegistered(mail, name: "c"))
        #expect(h.engine.tasks(of: mailApp).count == 2)
        #expect(try h.memoryStore.commits == commits, "nothing stored")
        #expect(h.events.take().isEmpty)

        // Re-registering an existing task is not a new one; other apps have their own count.
        try h.engine.register(mail, name: "b", options: TaskOptions(minimumInterval: 900))
        #expect(try h.info(mail, "b").options.minimumInterval == 900)
        try h.engine.register(news, name: "a", options: TaskOptions())
        try h.engine.register(news, name: "b", options: TaskOptions())

        // Room again after an unregister.
        try h.engine.unregister(mail, name: "a")
        try h.engine.register(mail, name: "c", options: TaskOptions())
        #expect(try h.engine.isRegistered(mail, name: "c"))
    }

    @Test func tasksPerUser() throws {
        var config = DaemonConfig()
        config.tasksPerUser = 3
        let h = try EngineHarness(config: config)
        try h.engine.register(mail, name: "a", options: TaskOptions())
        try h.engine.register(mail, name: "b", options: TaskOptions())
        try h.engine.register(news, name: "a", options: TaskOptions())
        let commits = try h.memoryStore.commits
        expectFetchError(.limitExceeded) { () throws(FetchError) in
            try h.engine.register(news, name: "b", options: TaskOptions())
        }
        expectFetchError(.limitExceeded) { () throws(FetchError) in
            try h.engine.register(Caller(app: AppKey(uid: 1000, appID: "org.example.Third"), connection: ":1.40"),
                                  name: "a", options: TaskOptions())
        }
        #expect(try !h.engine.isRegistered(news, name: "b"))
        #expect(h.engine.listTasks(uid: 1000).count == 3)
        #expect(try h.memoryStore.commits == commits)

        // Another user has their own allowance.
        try h.engine.register(otherUser, name: "a", options: TaskOptions())
        try h.engine.register(otherUser, name: "b", options: TaskOptions())
        #expect(h.engine.listTasks(uid: 1001).count == 2)

        // Removing a task, or a stopOnTerminate task's connection leaving, frees room.
        h.engine.connectionClosed(mail.connection)
        try h.engine.register(news, name: "b", options: TaskOptions())
        try h.engine.register(news, name: "c", options: TaskOptions())
        expectFetchError(.limitExceeded) { () throws(FetchError) in
            try h.engine.register(news, name: "d", options: TaskOptions())
        }
    }

    @Test func theUserCountIsRebuiltOnRestore() throws {
        var config = DaemonConfig()
        config.tasksPerUser = 2
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(config: config, store: store, clock: clock)
            try before.engine.register(mail, name: "a", options: TaskOptions())
            try before.engine.register(news, name: "a", options: TaskOptions())
        }
        let h = try EngineHarness(config: config, store: store, clock: clock)
        expectFetchError(.limitExceeded) { () throws(FetchError) in
            try h.engine.register(mail, name: "b", options: TaskOptions())
        }
    }
}

/// Malformed names and options are refused and store nothing.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineValidationTests {
    @Test(arguments: [
        ("", "empty"),
        (String(repeating: "a", count: 256), "256 bytes"),
        (String(repeating: "é", count: 128), "256 bytes"),
        ("has space", "' '"),
        ("slash/name", "'/'"),
        ("semi;colon", "';'"),
        ("naïve", "U+EF"),
        ("tab\tname", "U+9"),
    ])
    func badNamesAreRefused(name: String, problem: String) throws {
        let h = try EngineHarness()
        let store = try h.memoryStore
        let commits = store.commits
        let error = expectFetchError(.invalidArgs) { () throws(FetchError) in
            try h.engine.register(mail, name: name, options: TaskOptions())
        }
        #expect(error?.message.contains("task name") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains(problem) == true, "\(error?.message ?? "") should name \(problem)")
        #expect(store.commits == commits)
        #expect(store.state.tasks.isEmpty)
        #expect(h.engine.tasks(of: mailApp).isEmpty)
        #expect(h.events.take().isEmpty)

        // Every call that takes a name checks it.
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.unregister(mail, name: name) }
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.isRegistered(mail, name: name) }
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.trigger(mail, name: name) }
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.triggerTask(key(mail, name)) }
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.history(key(mail, name)) }
    }

    @Test(arguments: [
        String(repeating: "x", count: 255), "A-Z_a.z:0-9", "org.example.Mail:refresh", "_", "-",
    ])
    func plainNamesUpToTheLimitAreAccepted(name: String) throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: name, options: TaskOptions())
        #expect(try h.engine.isRegistered(mail, name: name))
        #expect(try h.memoryStore.state.tasks.map(\.key.name) == [name])
    }

    @Test(arguments: [UInt32(0), 604_801, UInt32.max])
    func intervalsOutOfRangeAreRefused(interval: UInt32) throws {
        let h = try EngineHarness()
        let commits = try h.memoryStore.commits
        let error = expectFetchError(.invalidArgs) { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: interval))
        }
        #expect(error?.message.contains("minimumInterval") == true)
        #expect(error?.message.contains("\(interval)") == true)
        #expect(try h.memoryStore.commits == commits)
        #expect(try !h.engine.isRegistered(mail, name: "t"))
    }

    @Test(arguments: [UInt32(1), 604_800])
    func intervalsAtTheEdgesAreAccepted(interval: UInt32) throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: interval))
        #expect(try h.info(mail, "t").options.minimumInterval == interval)
    }

    @Test func startOnBootRequiresStopOnTerminateOff() throws {
        let h = try EngineHarness()
        let commits = try h.memoryStore.commits
        let error = expectFetchError(.invalidArgs) { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions(stopOnTerminate: true, startOnBoot: true))
        }
        #expect(error?.message.contains("startOnBoot") == true)
        #expect(error?.message.contains("stopOnTerminate") == true)
        #expect(try h.memoryStore.commits == commits)
        #expect(try !h.engine.isRegistered(mail, name: "t"))

        // Re-registering an existing task with bad options leaves it as it was.
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 900))
        expectFetchError(.invalidArgs) { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 0))
        }
        #expect(try h.info(mail, "t").options == TaskOptions(minimumInterval: 900))
    }

    @Test func aBadNameIsReportedBeforeTheStatus() throws {
        let h = try EngineHarness()
        try h.engine.setAppEnabled(mailApp, enabled: false)
        expectFetchError(.invalidArgs) { () throws(FetchError) in
            try h.engine.register(mail, name: "", options: TaskOptions())
        }
    }
}

/// A change that cannot be stored changes nothing and says nothing.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineStoreFailureTests {
    static let diskFull = FetchError.failed("disk full")

    @Test func registerThatCannotBeStoredChangesNothing() throws {
        let h = try EngineHarness()
        let store = try h.memoryStore
        let commits = store.commits
        store.failNextCommit = Self.diskFull
        let error = expectFetchError(.failed) { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions())
        }
        #expect(error?.message == "disk full")
        #expect(try !h.engine.isRegistered(mail, name: "t"))
        #expect(h.engine.tasks(of: mailApp).isEmpty)
        #expect(h.engine.listTasks(uid: nil).isEmpty)
        #expect(h.engine.nextDeadline() == nil)
        #expect(h.engine.boundConnections.isEmpty)
        #expect(store.commits == commits)
        #expect(h.events.take().isEmpty)

        // The failure does not count against the limits or linger: the next try works.
        try h.engine.register(mail, name: "t", options: TaskOptions())
        #expect(try h.engine.isRegistered(mail, name: "t"))
    }

    @Test func reRegisterThatCannotBeStoredKeepsTheOldOptionsAndPendingFetch() throws {
        let h = try EngineHarness()
        let store = try h.memoryStore
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        let pending = try h.engine.triggerTask(key(mail, "t"))
        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in
            try h.engine.register(mailSecond, name: "t", options: TaskOptions(minimumInterval: 900, stopOnTerminate: false))
        }
        #expect(h.events.take().isEmpty, "the pending fetch was not sent")
        let info = try h.info(mail, "t")
        #expect(info.options.minimumInterval == 600)
        #expect(info.state == .pending)
        #expect(h.engine.boundConnections.isEmpty)
        try h.engine.register(mailSecond, name: "t", options: TaskOptions(minimumInterval: 900, stopOnTerminate: false))
        #expect(requestedIDs(h.events.take()) == [pending])
    }

    @Test func fireDueThatCannotBeStoredSendsNothing() throws {
        let h = try EngineHarness()
        let store = try h.memoryStore
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let deadline = try #require(h.engine.nextDeadline())
        h.advance(to: deadline)
        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in try h.engine.fireDue() }
        #expect(h.events.take().isEmpty)
        let info = try h.info(mail, "t")
        #expect(info.state == .scheduled)
        #expect(info.fetchCount == 0)
        #expect(h.engine.nextDeadline() == deadline)

        try h.engine.fireDue()
        let request = try singleRequest(h.events.take())
        #expect(try h.engine.history(key(mail, "t")).map(\.requestID) == [request.requestID])
    }

    @Test func finishThatCannotBeStoredLeavesTheFetchOpen() throws {
        let h = try EngineHarness()
        let store = try h.memoryStore
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let request = try singleRequest(try h.runTimer())
        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in
            try h.engine.finish(mail, requestID: request.requestID, result: .newData)
        }
        #expect(h.events.take().isEmpty)
        #expect(try h.info(mail, "t").state == .running)
        #expect(try h.info(mail, "t").lastResult == nil)
        try h.engine.finish(mail, requestID: request.requestID, result: .newData)
        #expect(h.events.take() == [.fetchFinished(task: key(mail, "t"), requestID: request.requestID, result: .newData)])
    }

    @Test func expiryThatCannotBeStoredIsRetried() throws {
        let h = try EngineHarness()
        let store = try h.memoryStore
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let request = try singleRequest(try h.runTimer())
        let expiry = try #require(h.engine.nextDeadline())
        h.advance(to: expiry)
        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in try h.engine.fireDue() }
        #expect(h.events.take().isEmpty)
        #expect(try h.info(mail, "t").state == .running)
        try h.engine.fireDue()
        #expect(h.events.take().contains(.fetchExpired(destination: mail.connection, task: key(mail, "t"), requestID: request.requestID)))
    }

    @Test func triggerUnregisterAndSettingsThatCannotBeStoredChangeNothing() throws {
        let h = try EngineHarness()
        let store = try h.memoryStore
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))

        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in try h.engine.trigger(mailSecond, name: "t") }
        #expect(h.events.take().isEmpty)
        #expect(try h.info(mail, "t").state == .scheduled)
        #expect(h.engine.boundConnections == [mail.connection], "still bound to the old connection")

        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in try h.engine.triggerTask(key(mail, "t")) }
        #expect(h.events.take().isEmpty)
        #expect(try h.info(mail, "t").fetchCount == 0)

        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in try h.engine.unregister(mail, name: "t") }
        #expect(try h.engine.isRegistered(mail, name: "t"))

        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in try h.engine.unregisterAll(mail) }
        #expect(try h.engine.isRegistered(mail, name: "t"))

        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in try h.engine.setAppEnabled(mailApp, enabled: false) }
        #expect(h.engine.status(of: mailApp) == .available)

        store.failNextCommit = Self.diskFull
        expectFetchError(.failed) { () throws(FetchError) in try h.engine.setMinimumInterval(mailApp, seconds: 3600) }
        #expect(try h.info(mail, "t").effectiveInterval == 600)

        // A departed connection that cannot be stored keeps the task.
        store.failNextCommit = Self.diskFull
        h.engine.connectionClosed(mail.connection)
        #expect(try h.engine.isRegistered(mail, name: "t"))
        #expect(h.events.take().isEmpty)
        #expect(store.state.tasks.count == 1)
    }

    @Test func restoreThatCannotBeStoredFails() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "t", options: TaskOptions())
        }
        store.failNextCommit = Self.diskFull
        let engine = FetchEngine(config: DaemonConfig(), store: store, clock: clock, logger: quietLogger)
        expectFetchError(.failed) { () throws(FetchError) in
            try engine.restore(bootID: "boot-B", isStillConnected: { _, _ in true })
        }
        #expect(store.state.bootID == "boot-A")
        #expect(store.state.tasks.count == 1, "the stopOnTerminate task is still stored")
    }
}
