import Foundation
import Testing

@testable import BackgroundFetchCore
import TestKit

/// What the engine does when the daemon starts again: the same boot or a new one.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineBootTests {
    /// Records what `restore` asked about connections.
    final class ConnectionProbe {
        var asked: [(String, AppKey)] = []
        let alive: Set<String>

        init(alive: Set<String>) { self.alive = alive }

        func check(_ connection: String, _ app: AppKey) -> Bool {
            asked.append((connection, app))
            return alive.contains(connection)
        }
    }

    @Test func theSameBootKeepsTasksAndLiveBindings() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
            try before.engine.register(news, name: "u", options: TaskOptions(minimumInterval: 900, stopOnTerminate: false))
        }
        do {
            let probe = ConnectionProbe(alive: [mail.connection, news.connection])
            let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A", isStillConnected: probe.check)
            #expect(probe.asked.count == 2)
            #expect(probe.asked.contains { $0 == (mail.connection, mailApp) })
            #expect(probe.asked.contains { $0 == (news.connection, newsApp) })
            #expect(try h.engine.isRegistered(mail, name: "t"))
            #expect(try h.engine.isRegistered(news, name: "u"))
            #expect(try h.info(mail, "t").state == .scheduled)
            // Due where it was: registration plus the interval, delivered to the kept binding.
            #expect(h.engine.nextDeadline() == h.start + secs(600))
            let request = try singleRequest(try h.runTimer())
            #expect(request.destination == mail.connection)
        }
    }

    @Test func theSameBootDropsBindingsWhoseConnectionLeft() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "stops", options: TaskOptions(minimumInterval: 600))
            try before.engine.register(mail, name: "stays", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
            try before.engine.register(news, name: "alive", options: TaskOptions(minimumInterval: 600))
        }
        let probe = ConnectionProbe(alive: [news.connection])
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A", isStillConnected: probe.check)
        #expect(try !h.engine.isRegistered(mail, name: "stops"), "removed as if the daemon had seen it leave")
        #expect(try h.engine.isRegistered(mail, name: "stays"))
        #expect(try h.engine.isRegistered(news, name: "alive"))
        #expect(store.state.tasks.map(\.key.name).sorted() == ["alive", "stays"], "the removal is stored")
        #expect(store.state.tasks.first { $0.key.name == "stays" }?.binding == nil)
        #expect(store.state.tasks.first { $0.key.name == "alive" }?.binding == news.connection)

        let events = try h.runTimer()
        #expect(try singleRequest(events).task == key(news, "alive"))
        #expect(try h.info(mail, "stays").state == .pending)
    }

    @Test func aNewBootKeepsStartOnBootTasksAndPutsTheOthersToSleep() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "stops", options: TaskOptions(minimumInterval: 600))
            try before.engine.register(
                mail, name: "boots", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false, startOnBoot: true))
            try before.engine.register(mail, name: "sleeps", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        }
        let probe = ConnectionProbe(alive: [mail.connection])
        let h = try EngineHarness(
            store: store, clock: clock, bootID: "boot-B", isStillConnected: probe.check, isActivatable: { _ in true })
        #expect(store.state.bootID == "boot-B", "the new boot id is stored")
        #expect(try !h.engine.isRegistered(mail, name: "stops"))
        #expect(try h.engine.isRegistered(mail, name: "boots"))
        #expect(try h.engine.isRegistered(mail, name: "sleeps"))
        #expect(h.engine.boundConnections.isEmpty, "bindings do not survive a boot, whatever the bus says")

        #expect(try h.info(mail, "boots").state == .scheduled)
        var sleeps = try h.info(mail, "sleeps")
        #expect(sleeps.state == .dormant)
        #expect(sleeps.nextFetch == 0)

        // Only the startOnBoot task fires (by activation: it has no connection now).
        let events = try h.runTimer()
        #expect(events.count == 1)
        guard case .activateAndRequest(let task, let id) = events.first else {
            Issue.record("expected activateAndRequest, got \(events)")
            return
        }
        #expect(task == key(mail, "boots"))
        try h.engine.finish(mail, requestID: id, result: .noData)
        _ = h.events.take()

        // The dormant task stays quiet however long it waits.
        for _ in 0..<5 {
            h.advance(seconds: 3600)
            try h.engine.fireDue()
            for event in h.events.take() {
                switch event {
                case .fetchRequested(_, let task, _), .activateAndRequest(let task, _):
                    #expect(task != key(mail, "sleeps"))
                default: break
                }
            }
        }
        sleeps = try h.info(mail, "sleeps")
        #expect(sleeps.state == .dormant)
        #expect(sleeps.fetchCount == 0)

        // Registered again, it wakes; its due time long passed, it fires at the next timer.
        try h.engine.register(mail, name: "sleeps", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        #expect(try h.info(mail, "sleeps").state == .scheduled)
        let deadline = try #require(h.engine.nextDeadline())
        #expect(deadline <= h.now)
        try h.engine.fireDue()
        let woke = h.events.take().filter {
            if case .fetchRequested(mail.connection, key(mail, "sleeps"), _) = $0 { return true }
            return false
        }
        #expect(woke.count == 1)
    }

    @Test func triggerWakesADormantTask() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
            try before.engine.register(news, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        }
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-B")
        #expect(try h.info(mail, "t").state == .dormant)
        let id = try h.engine.trigger(mail, name: "t")
        #expect(h.events.take() == [.fetchRequested(destination: mail.connection, task: key(mail, "t"), requestID: id)])
        #expect(try h.info(mail, "t").state == .running)

        // The manager's trigger wakes it too; with no connection the fetch is pending.
        let managerID = try h.engine.triggerTask(key(news, "t"))
        #expect(h.events.take().isEmpty)
        #expect(try h.info(news, "t").state == .pending)
        try h.engine.register(news, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        #expect(h.events.take() == [.fetchRequested(destination: news.connection, task: key(news, "t"), requestID: managerID)])
    }

    @Test func aPendingFetchOfADormantTaskIsKeptAcrossANewBoot() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        var pending: UInt64 = 0
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
            before.engine.connectionClosed(mail.connection)
            pending = try before.engine.triggerTask(key(mail, "t"))
            #expect(try before.info(mail, "t").state == .pending)
        }
        clock.advance(bySeconds: 10)
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-B")
        #expect(try h.info(mail, "t").state == .dormant)
        #expect(h.engine.nextDeadline() == nil, "a dormant task wakes nothing")

        // Registered again (well before its next due time): the kept fetch goes out now.
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        #expect(h.events.take() == [.fetchRequested(destination: mail.connection, task: key(mail, "t"), requestID: pending)])
        #expect(h.engine.nextDeadline() == h.now + secs(30), "its timeout starts on delivery")
        try h.engine.finish(mail, requestID: pending, result: .newData)
        #expect(try h.engine.history(key(mail, "t")).map(\.result) == [.newData], "no dangling unanswered row")
    }

    @Test func aDormantTaskStaysDormantAcrossARestartInTheSameBoot() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        }
        do {
            let h = try EngineHarness(store: store, clock: clock, bootID: "boot-B")
            #expect(try h.info(mail, "t").state == .dormant)
        }
        clock.advance(bySeconds: 7200)
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-B")
        #expect(try h.info(mail, "t").state == .dormant)
        #expect(h.engine.nextDeadline() == nil)
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty)
    }

    @Test func aStartOnBootTasksPendingFetchIsKeptAcrossANewBoot() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        var pending: UInt64 = 0
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(
                mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false, startOnBoot: true))
            before.engine.connectionClosed(mail.connection)
            pending = try before.engine.triggerTask(key(mail, "t"))
        }
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-B")
        #expect(try h.info(mail, "t").state == .pending)
        #expect(try h.info(mail, "t").lastResult == nil, "not counted as failed: it never went out")
        try h.engine.register(
            mailSecond, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false, startOnBoot: true))
        #expect(requestedIDs(h.events.take()) == [pending])
    }

    @Test func aFetchRunningAcrossANewBootCountsAsFailed() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        var id: UInt64 = 0
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(
                mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false, startOnBoot: true))
            id = try before.engine.trigger(mail, name: "t")
        }
        clock.advance(bySeconds: 5)
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-B")
        let info = try h.info(mail, "t")
        #expect(info.state == .scheduled)
        #expect(info.lastResult == .failed)
        #expect(info.failureCount == 1)
        #expect(info.nextFetch == info.lastFetch + secs(1200), "backed off like any failure")
        #expect(try h.engine.history(key(mail, "t")).map(\.result) == [.failed])
        expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(mail, requestID: id, result: .newData)
        }
    }

    @Test func aFetchMissedWhileTheDaemonWasDownFiresOnceNotInABurst() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
            let request = try singleRequest(try before.runTimer())
            try before.engine.finish(mail, requestID: request.requestID, result: .newData)
        }
        let lastFetch = clock.now()
        // Down for ten intervals and a bit.
        clock.advance(bySeconds: 6_250)
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
        let deadline = try #require(h.engine.nextDeadline())
        #expect(deadline == lastFetch + secs(600), "overdue: the timer goes off at once")
        try h.engine.fireDue()
        let request = try singleRequest(h.events.take())
        #expect(request.destination == mail.connection)
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty, "one fetch, not one per missed interval")
        try h.engine.finish(mail, requestID: request.requestID, result: .newData)
        _ = h.events.take()
        #expect(h.engine.nextDeadline() == h.now + secs(600), "the schedule restarts from the catch-up fetch")
        #expect(try h.info(mail, "t").fetchCount == 2)
    }

    @Test func aMissedFetchAfterANewBootFiresOnceForAStartOnBootTask() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(
                mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false, startOnBoot: true))
        }
        clock.advance(bySeconds: 100_000)
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-B", isActivatable: { _ in true })
        try h.engine.fireDue()
        let events = h.events.take()
        #expect(events.count == 1)
        guard case .activateAndRequest(let task, _) = events.first else {
            Issue.record("expected activateAndRequest, got \(events)")
            return
        }
        #expect(task == key(mail, "t"))
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty)
    }

    @Test func aRunningFetchSurvivesARestartInTheSameBootAndExpiresOnTime() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        var id: UInt64 = 0
        var requestedAt: Int64 = 0
        do {
            let before = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try before.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
            id = try before.engine.trigger(mail, name: "t")
            requestedAt = clock.now()
        }
        clock.advance(bySeconds: 10)
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
        #expect(try h.info(mail, "t").state == .running)
        #expect(h.engine.nextDeadline() == requestedAt + secs(30))
        try h.engine.finish(mail, requestID: id, result: .newData)
        #expect(h.events.take() == [.fetchFinished(task: key(mail, "t"), requestID: id, result: .newData)])
    }

    @Test func requestIDsNeverRepeatAfterARestart() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let clock = ManualClock()
        var before: [UInt64] = []
        do {
            let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
            let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
            for _ in 0..<3 {
                let id = try h.engine.trigger(mail, name: "t")
                before.append(id)
                try h.engine.finish(mail, requestID: id, result: .newData)
            }
            // One left open across the restart.
            before.append(try h.engine.trigger(mail, name: "t"))
        }
        #expect(Set(before).count == 4)

        var after: [UInt64] = []
        do {
            let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
            let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            #expect(try h.engine.trigger(mail, name: "t") == before.last, "the open request is kept")
            try h.engine.finish(mail, requestID: try #require(before.last), result: .noData)
            for _ in 0..<3 {
                let id = try h.engine.trigger(mail, name: "t")
                after.append(id)
                try h.engine.finish(mail, requestID: id, result: .newData)
            }
        }
        // And after a new boot too.
        do {
            let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
            let h = try EngineHarness(store: store, clock: clock, bootID: "boot-B")
            try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
            after.append(try h.engine.trigger(mail, name: "t"))
        }
        let beforeMax = try #require(before.max())
        #expect(after.allSatisfy { $0 > beforeMax }, "ids after restarts: \(after), before: \(before)")
        #expect(Set(before + after).count == before.count + after.count)
    }

    @Test func aPendingFetchIsKeptAcrossARestartAndItsTimeoutStartsOnDelivery() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let clock = ManualClock()
        var pending: UInt64 = 0
        do {
            let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
            let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
            h.engine.connectionClosed(mail.connection)
            pending = try h.engine.triggerTask(key(mail, "t"))
            #expect(try h.info(mail, "t").state == .pending)
        }
        clock.advance(bySeconds: 3600)
        let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
        #expect(try h.info(mail, "t").state == .pending)
        #expect(h.engine.nextDeadline() == nil)
        try h.engine.register(mailSecond, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        #expect(h.events.take() == [.fetchRequested(destination: mailSecond.connection, task: key(mail, "t"), requestID: pending)])
        #expect(h.engine.nextDeadline() == h.now + secs(30))
    }

    @Test func tasksAndSettingsSurviveARestartOnDisk() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let clock = ManualClock()
        var expected: [TaskInfo] = []
        do {
            let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
            let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
            try h.engine.register(mail, name: "a", options: TaskOptions(minimumInterval: 700))
            try h.engine.register(mail, name: "b", options: TaskOptions(minimumInterval: 800, stopOnTerminate: false, startOnBoot: true))
            try h.engine.setMinimumInterval(mailApp, seconds: 750)
            try h.engine.setAppEnabled(newsApp, enabled: false)
            let id = try h.engine.trigger(mail, name: "b")
            try h.engine.finish(mail, requestID: id, result: .failed)
            expected = h.engine.listTasks(uid: nil)
        }
        let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        let h = try EngineHarness(store: store, clock: clock, bootID: "boot-A")
        #expect(h.engine.listTasks(uid: nil) == expected)
        #expect(try h.info(mail, "a").effectiveInterval == 750)
        #expect(h.engine.status(of: newsApp) == .denied)
        #expect(h.engine.status(of: mailApp) == .available)
    }
}
