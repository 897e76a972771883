import Testing

@testable import BackgroundFetchCore
import TestKit

/// Constraints, power saving and sleep, on the injected clock: the observed
/// machine is a plain input (``MachineConditions``).
@Suite(.timeLimit(.minutes(1)))
struct ConstraintTests {
    static let online = MachineConditions(online: true, metered: false, onBattery: false, batteryLow: false)
    static let needsNetwork = TaskOptions(minimumInterval: 600, constraints: .init(network: true))

    @Test func theRulesNameTheFirstUnmetConditionAndAnAbsentServiceCountsAsMet() {
        let all = TaskOptions.Constraints(network: true, unmeteredNetwork: true, externalPower: true, batteryNotLow: true)
        #expect(MachineConditions.unknown.holdBack(all, deferInPowerSaver: true) == nil, "no service on the bus: nothing is held")
        var machine = Self.online
        #expect(machine.holdBack(all, deferInPowerSaver: true) == nil)
        machine.batteryLow = true
        #expect(machine.holdBack(all, deferInPowerSaver: true) == .batteryLow)
        machine.onBattery = true
        #expect(machine.holdBack(all, deferInPowerSaver: true) == .externalPower)
        machine.metered = true
        #expect(machine.holdBack(all, deferInPowerSaver: true) == .unmeteredNetwork)
        #expect(machine.holdBack(.init(network: true), deferInPowerSaver: true) == nil, "metered is fine without unmetered")
        machine.online = false
        #expect(machine.holdBack(all, deferInPowerSaver: true) == .network)
        #expect(machine.holdBack(.init(unmeteredNetwork: true), deferInPowerSaver: true) == .network, "unmetered implies online")
        #expect(machine.holdBack(.none, deferInPowerSaver: true) == nil)

        var saver = MachineConditions(powerSaver: true)
        #expect(saver.holdBack(.none, deferInPowerSaver: true) == .powerSaver)
        #expect(saver.holdBack(.none, deferInPowerSaver: false) == nil, "DeferInPowerSaver=no")
        saver.sleeping = true
        #expect(saver.holdBack(.none, deferInPowerSaver: false) == .suspended, "sleep holds every task")
    }

    @Test func aDueTaskWaitsWithoutWakingAndFiresOnceWhenMet() throws {
        let h = try EngineHarness()
        try h.engine.updateConditions(MachineConditions(online: false))
        try h.engine.register(mail, name: "sync", options: Self.needsNetwork)
        try h.engine.register(news, name: "plain", options: TaskOptions(minimumInterval: 600))
        let dueAt = h.start + secs(600)

        let fired = try h.runTimer()
        #expect(try singleRequest(fired).task == key(news, "plain"), "the unconstrained task goes; the other waits")
        let waiting = try h.info(mail, "sync")
        #expect(waiting.state == .waiting && waiting.reason == .network && waiting.nextFetch == dueAt)
        #expect(h.engine.nextDeadline() != dueAt, "a waiting task arms no timer")
        let next = try #require(h.engine.nextDeadline())
        #expect(next > h.now, "nothing is due again before the next task: no polling")

        // Deferral is not a failure: no backoff, no failure count.
        h.advance(seconds: 3600)
        #expect(try h.engine.updateConditions(MachineConditions(online: false, onBattery: true)) == 0, "still offline")
        #expect(h.events.take().isEmpty)
        #expect(try h.engine.updateConditions(MachineConditions(online: true)) == 1)
        let released = try singleRequest(h.events.take())
        #expect(released.task == key(mail, "sync") && released.destination == mail.connection)
        let running = try h.info(mail, "sync")
        #expect(running.state == .running && running.failureCount == 0 && running.consecutiveFailures == 0)
        #expect(try h.engine.updateConditions(MachineConditions(online: true, onBattery: false)) == 0, "fired once")

        // Its next fetch counts from that fetch.
        try h.engine.finish(mail, requestID: released.requestID, result: .newData)
        #expect(try h.info(mail, "sync").nextFetch == h.now + secs(600))
    }

    @Test func everyTaskReleasedByOneChangeFiresInOneCommit() throws {
        let store = MemoryTaskStore()
        var config = DaemonConfig()
        config.tasksPerApp = 1000
        let h = try EngineHarness(config: config, store: store)
        try h.engine.updateConditions(MachineConditions(onBattery: true))
        let power = TaskOptions(minimumInterval: 600, stopOnTerminate: true, constraints: .init(externalPower: true))
        for n in 0..<300 { try h.engine.register(mail, name: "t\(n)", options: power) }
        h.advance(seconds: 600)
        // Due all at once: fireDue takes them a slice at a time, each slice waits.
        while let deadline = h.engine.nextDeadline(), deadline <= h.now { try h.engine.fireDue() }
        #expect(h.events.take().isEmpty)
        #expect(h.engine.tasks(of: mailApp).allSatisfy { $0.state == .waiting && $0.reason == .externalPower })
        #expect(h.engine.nextDeadline() == nil, "300 waiting tasks arm no timer")

        let commitsBefore = store.commits
        #expect(try h.engine.updateConditions(MachineConditions(onBattery: false)) == 300)
        #expect(requestedIDs(h.events.take()).count == 300)
        #expect(store.commits == commitsBefore + 1, "one commit for the whole release")
    }

    @Test func powerSaverHoldsUnlessTheAdministratorSaysNo() throws {
        let h = try EngineHarness()
        try h.engine.updateConditions(MachineConditions(powerSaver: true))
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(try h.runTimer().isEmpty)
        #expect(try h.info(mail, "t").reason == .powerSaver)
        #expect(try h.engine.updateConditions(MachineConditions(powerSaver: false)) == 1)

        var config = DaemonConfig()
        config.deferInPowerSaver = false
        let lenient = try EngineHarness(config: config)
        try lenient.engine.updateConditions(MachineConditions(powerSaver: true))
        try lenient.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(try singleRequest(try lenient.runTimer()).task == key(mail, "t"))
    }

    @Test func sleepHoldsEveryFetchAndResumeCatchesUpOnceEach() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "a", options: TaskOptions(minimumInterval: 600))
        try h.engine.register(news, name: "b", options: Self.needsNetwork)
        try h.engine.updateConditions(MachineConditions(online: true, sleeping: true))
        // The machine sleeps through several intervals; on resume the timer
        // finds both long overdue.
        h.advance(seconds: 6000)
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty, "nothing new is sent while preparing to sleep")
        #expect(try h.info(mail, "a").reason == .suspended && h.info(news, "b").reason == .suspended)

        // Resumed, but the network is not back yet: only the first goes.
        #expect(try h.engine.updateConditions(MachineConditions(online: false)) == 1)
        #expect(try singleRequest(h.events.take()).task == key(mail, "a"))
        #expect(try h.info(news, "b").reason == .network)
        #expect(try h.engine.updateConditions(MachineConditions(online: true)) == 1, "one catch-up fetch, not one per missed interval")
        #expect(try singleRequest(h.events.take()).task == key(news, "b"))
    }

    @Test func triggersIgnoreConstraintsPowerSavingAndSleep() throws {
        let h = try EngineHarness()
        try h.engine.updateConditions(MachineConditions(online: false, powerSaver: true, sleeping: true))
        try h.engine.register(mail, name: "t", options: Self.needsNetwork)
        let id = try h.engine.trigger(mail, name: "t")
        #expect(try singleRequest(h.events.take()).requestID == id)
    }

    @Test func aChangedTaskIsLookedAtAgainAndAnUnregisteredOneIsForgotten() throws {
        let h = try EngineHarness()
        try h.engine.updateConditions(MachineConditions(online: false))
        try h.engine.register(mail, name: "t", options: Self.needsNetwork)
        try h.engine.register(mail, name: "u", options: Self.needsNetwork)
        #expect(try h.runTimer().isEmpty)
        // Re-registered without the constraint: it is due, so it goes.
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(try singleRequest(try h.runTimer()).task == key(mail, "t"))
        try h.engine.unregister(mail, name: "u")
        #expect(try h.engine.updateConditions(MachineConditions(online: true)) == 0)
        #expect(h.events.take().isEmpty)
    }

    @Test func launchNeverKeepsTheFetchPendingInsteadOfActivating() throws {
        let h = try EngineHarness(isActivatable: { _ in true })
        try h.engine.register(mail, name: "never", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false, launch: .never))
        try h.engine.register(mail, name: "start", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        let events = try h.runTimer()
        #expect(events.count == 1)
        guard case .activateAndRequest(let task, _) = events.first else {
            Issue.record("expected an activation, got \(events)")
            return
        }
        #expect(task == key(mail, "start"))
        #expect(try h.info(mail, "never").state == .pending)
    }

    @Test func theInhibitorCountFollowsDeliveredFetches() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        try h.engine.register(news, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(h.engine.runningFetchCount == 0)
        let ids = requestedIDs(try h.runTimer())
        #expect(ids.count == 2 && h.engine.runningFetchCount == 2)
        #expect(h.engine.appsWithRunningFetches() == [mailApp, newsApp])
        try h.engine.finish(mail, requestID: ids[0], result: .noData)
        #expect(h.engine.runningFetchCount == 1 && h.engine.appsWithRunningFetches() == [newsApp])
        h.advance(seconds: 30)
        try h.engine.fireDue()  // the other expires
        #expect(h.engine.runningFetchCount == 0 && h.engine.appsWithRunningFetches().isEmpty)
    }

    /// Released while its app was switched off, a waiting task is not stuck:
    /// once its app is on again and nothing holds it, it goes.
    @Test func aWaitingTaskPausedAcrossTheChangeGoesWhenItsAppIsBack() throws {
        let h = try EngineHarness()
        try h.engine.updateConditions(MachineConditions(online: false))
        try h.engine.register(mail, name: "t", options: Self.needsNetwork)
        #expect(try h.runTimer().isEmpty)
        try h.engine.setAppEnabled(mailApp, enabled: false)
        #expect(try h.engine.updateConditions(MachineConditions(online: true)) == 0, "paused: nothing goes")
        try h.engine.setAppEnabled(mailApp, enabled: true)
        let deadline = try #require(h.engine.nextDeadline(), "back in the index")
        #expect(deadline <= h.now)
        try h.engine.fireDue()
        #expect(try singleRequest(h.events.take()).task == key(mail, "t"))
    }

    /// A release that cannot be stored is tried again by the timer at once,
    /// not only at the next change.
    @Test func aReleaseThatCannotBeStoredIsRetriedByTheTimer() throws {
        let store = MemoryTaskStore()
        let h = try EngineHarness(store: store)
        try h.engine.updateConditions(MachineConditions(online: false))
        try h.engine.register(mail, name: "t", options: Self.needsNetwork)
        #expect(try h.runTimer().isEmpty)
        store.failNextCommit = FetchError(.failed, "disk full")
        #expect(throws: FetchError.self) { try h.engine.updateConditions(MachineConditions(online: true)) }
        #expect(h.events.take().isEmpty)
        let deadline = try #require(h.engine.nextDeadline())
        #expect(deadline <= h.now)
        try h.engine.fireDue()
        #expect(try singleRequest(h.events.take()).task == key(mail, "t"))
    }

    /// Starting an app has its own time on top of the fetch's timeout; a
    /// failed start hands the fetch to the app if it connected meanwhile.
    @Test func anActivationHasTimeToStartAndAFailedOneFallsBackToTheConnection() throws {
        let h = try EngineHarness(isActivatable: { _ in true })
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        let events = try h.runTimer()
        guard case .activateAndRequest(_, let id) = events.first else {
            Issue.record("expected an activation, got \(events)")
            return
        }
        #expect(h.engine.nextDeadline() == h.now + secs(Int64(h.engine.config.fetchTimeout + FetchEngine.activationTimeout)))
        // The app starts and registers while the start call is still out, then the call fails.
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        _ = h.events.take()
        h.engine.activationFailed(task: key(mail, "t"), requestID: id)
        let delivered = try singleRequest(h.events.take())
        #expect(delivered.requestID == id && delivered.destination == mail.connection)
        #expect(try h.info(mail, "t").state == .running)
    }
}
