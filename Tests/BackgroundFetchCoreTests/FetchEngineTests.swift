import Testing

@testable import BackgroundFetchCore
import TestKit

/// Registering, scheduling, batching and the first fetch.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineSchedulingTests {
    @Test func firstFetchIsDueOneEffectiveIntervalAfterRegistration() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "refresh", options: TaskOptions(minimumInterval: 900))
        #expect(h.events.take().isEmpty, "registering fires nothing")
        let due = h.start + secs(900)
        #expect(h.engine.nextDeadline() == due)
        let info = try h.info(mail, "refresh")
        #expect(info.state == .scheduled)
        #expect(info.nextFetch == due)
        #expect(info.effectiveInterval == 900)
        #expect(info.lastFetch == 0)
        #expect(info.fetchCount == 0)

        // Never early: a timer that goes off before the due time fires nothing.
        for _ in 0..<3 {
            h.advance(seconds: 299)
            try h.engine.fireDue()
            #expect(h.events.take().isEmpty)
            #expect(h.engine.nextDeadline() == due)
        }
        h.advance(to: due - secs(1))
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty)

        h.advance(to: due)
        try h.engine.fireDue()
        let request = try singleRequest(h.events.take())
        #expect(request.destination == mail.connection)
        #expect(request.task == key(mail, "refresh"))

        let running = try h.info(mail, "refresh")
        #expect(running.state == .running)
        #expect(running.nextFetch == 0)
        #expect(running.lastFetch == due)
        #expect(running.fetchCount == 1)
        // The only deadline now is the fetch's timeout.
        #expect(h.engine.nextDeadline() == due + secs(Int64(h.engine.config.fetchTimeout)))
    }

    @Test func requestIDsAreFreshForEveryFetch() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "a", options: TaskOptions(minimumInterval: 600))
        try h.engine.register(mail, name: "b", options: TaskOptions(minimumInterval: 600))
        var seen: Set<UInt64> = []
        for _ in 0..<4 {
            let events = try h.runTimer()
            let ids = requestedIDs(events)
            #expect(ids.count == 2)
            for id in ids {
                #expect(!seen.contains(id), "request id \(id) handed out twice")
                seen.insert(id)
                try h.engine.finish(mail, requestID: id, result: .newData)
            }
            _ = h.events.take()
        }
        #expect(seen.count == 8)
        #expect(!seen.contains(0))
    }

    @Test(arguments: [
        // option, app's SetMinimumInterval, administrator's floor, expected
        (UInt32(900), UInt32?.none, UInt32(60), UInt32(900)),
        (30, nil, 60, 60),
        (600, 1200, 60, 1200),
        (1200, 600, 60, 1200),
        (100, 200, 300, 300),
        (100, 400, 300, 400),
        (1, nil, 1, 1),
    ])
    func effectiveIntervalIsTheLargestOfOptionAppAndFloor(
        option: UInt32, appMinimum: UInt32?, floor: UInt32, expected: UInt32
    ) throws {
        var config = DaemonConfig()
        config.minimumIntervalFloor = floor
        let h = try EngineHarness(config: config)
        if let appMinimum { try h.engine.setMinimumInterval(mailApp, seconds: appMinimum) }
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: option))

        let info = try h.info(mail, "t")
        #expect(info.effectiveInterval == expected)
        #expect(info.options.minimumInterval == option, "the option itself is reported unchanged")
        let due = h.start + secs(Int64(expected))
        #expect(info.nextFetch == due)
        #expect(h.engine.nextDeadline() == due)

        if expected > 1 {
            h.advance(to: due - secs(1))
            try h.engine.fireDue()
            #expect(h.events.take().isEmpty)
        }
        h.advance(to: due)
        try h.engine.fireDue()
        #expect(try singleRequest(h.events.take()).task == key(mail, "t"))
    }

    @Test func setMinimumIntervalMovesAnAlreadyRegisteredTask() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        try h.engine.setMinimumInterval(mailApp, seconds: 3600)
        #expect(try h.info(mail, "t").effectiveInterval == 3600)
        #expect(h.engine.nextDeadline() == h.start + secs(3600))
        // Another app is not affected.
        try h.engine.register(news, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(try h.info(news, "t").effectiveInterval == 600)
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.setMinimumInterval(mailApp, seconds: 0) }
        expectFetchError(.invalidArgs) { () throws(FetchError) in
            try h.engine.setMinimumInterval(mailApp, seconds: 604_801)
        }
        #expect(try h.info(mail, "t").effectiveInterval == 3600)
    }

    @Test func twoTasksDueCloseTogetherShareOneWakeUp() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "a", options: TaskOptions(minimumInterval: 1000))
        h.advance(seconds: 50)
        try h.engine.register(news, name: "b", options: TaskOptions(minimumInterval: 1000))
        let dueA = h.start + secs(1000)
        let dueB = h.start + secs(1050)

        let wake = try #require(h.engine.nextDeadline())
        #expect(wake >= dueA && wake >= dueB, "never earlier than either is due")
        #expect(wake - dueA <= secs(100), "within 10% of a's interval")
        #expect(wake == dueB)

        // Firing at a's due time alone would send only a; the batched wake-up sends both.
        h.advance(to: wake)
        try h.engine.fireDue()
        let events = h.events.take()
        #expect(events.count == 2)
        let tasks = Set(events.compactMap { event -> TaskKey? in
            if case .fetchRequested(_, let task, _) = event { return task }
            return nil
        })
        #expect(tasks == [key(mail, "a"), key(news, "b")])
    }

    @Test func batchingNeverMovesATaskPastTenPercentOfItsInterval() throws {
        let h = try EngineHarness()
        // a: due at 1000 s, may wait until 1100 s. b: due at 1101 s — too late to join.
        try h.engine.register(mail, name: "a", options: TaskOptions(minimumInterval: 1000))
        h.advance(seconds: 101)
        try h.engine.register(news, name: "b", options: TaskOptions(minimumInterval: 1000))
        #expect(h.engine.nextDeadline() == h.start + secs(1000))
        let first = try h.runTimer()
        #expect(try singleRequest(first).task == key(mail, "a"))
    }

    @Test func anIsolatedTaskFiresExactlyOnTime() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "a", options: TaskOptions(minimumInterval: 1000))
        h.advance(seconds: 500)
        try h.engine.register(mail, name: "b", options: TaskOptions(minimumInterval: 1000))

        #expect(h.engine.nextDeadline() == h.start + secs(1000))
        let first = try singleRequest(try h.runTimer())
        #expect(first.task == key(mail, "a"))
        #expect(h.now == h.start + secs(1000))
        try h.engine.finish(mail, requestID: first.requestID, result: .noData)
        _ = h.events.take()

        // a is next due at 2000 s, far from b's 1500 s: b goes out on time, alone.
        #expect(h.engine.nextDeadline() == h.start + secs(1500))
        let second = try singleRequest(try h.runTimer())
        #expect(second.task == key(mail, "b"))
        #expect(h.now == h.start + secs(1500))
    }

    @Test func withNothingRegisteredThereIsNoDeadline() throws {
        let h = try EngineHarness()
        #expect(h.engine.nextDeadline() == nil)
        try h.engine.register(mail, name: "t", options: TaskOptions())
        #expect(h.engine.nextDeadline() != nil)
        try h.engine.unregister(mail, name: "t")
        #expect(h.engine.nextDeadline() == nil)
    }

    @Test func reRegisterKeepsTheRegistrationTimeBeforeAnyFetch() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        h.advance(seconds: 300)
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 900))
        // The registration plus the new interval, not now plus it.
        #expect(h.engine.nextDeadline() == h.start + secs(900))
        #expect(try h.info(mail, "t").options.minimumInterval == 900)
        #expect(h.engine.tasks(of: mailApp).count == 1)
    }

    @Test func reRegisterKeepsTheLastFetchTime() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let request = try singleRequest(try h.runTimer())
        let lastFetch = h.now
        #expect(lastFetch == h.start + secs(600))
        try h.engine.finish(mail, requestID: request.requestID, result: .newData)
        _ = h.events.take()

        // A longer interval: the last fetch plus the new interval.
        h.advance(seconds: 100)
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 1200))
        #expect(h.events.take().isEmpty)
        #expect(try h.info(mail, "t").lastFetch == lastFetch)
        #expect(try h.info(mail, "t").nextFetch == lastFetch + secs(1200))
        #expect(h.engine.nextDeadline() == lastFetch + secs(1200))

        // A shorter interval whose time has passed: fires at the next timer, not before.
        h.advance(to: lastFetch + secs(500))
        try h.engine.register(mailSecond, name: "t", options: TaskOptions(minimumInterval: 300))
        #expect(h.events.take().isEmpty, "registering does not fire by itself")
        let deadline = try #require(h.engine.nextDeadline())
        #expect(deadline == lastFetch + secs(300))
        #expect(deadline <= h.now)
        try h.engine.fireDue()
        let again = try singleRequest(h.events.take())
        #expect(again.destination == mailSecond.connection, "re-registering rebinds to the new connection")
        #expect(again.requestID != request.requestID)
        #expect(try h.info(mail, "t").lastFetch == lastFetch + secs(500))
    }

    @Test func registeringAgainBindsToTheNewConnection() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        try h.engine.register(mailSecond, name: "t", options: TaskOptions(minimumInterval: 600))
        // The old connection leaving no longer touches the task.
        h.engine.connectionClosed(mail.connection)
        #expect(try h.engine.isRegistered(mail, name: "t"))
        #expect(try singleRequest(try h.runTimer()).destination == mailSecond.connection)
        h.engine.connectionClosed(mailSecond.connection)
        #expect(try !h.engine.isRegistered(mail, name: "t"))
    }
}

/// FinishFetch, expiry and backoff.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineFinishTests {
    @Test(arguments: [FetchResult.noData, .newData])
    func successResetsTheBackoff(success: FetchResult) throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))

        var request = try singleRequest(try h.runTimer())
        try h.engine.finish(mail, requestID: request.requestID, result: .failed)
        #expect(h.events.take() == [.fetchFinished(task: key(mail, "t"), requestID: request.requestID, result: .failed)])
        var info = try h.info(mail, "t")
        #expect(info.lastResult == .failed)
        #expect(info.failureCount == 1)
        #expect(info.nextFetch == info.lastFetch + secs(1200), "one failure doubles the interval")
        #expect(info.effectiveInterval == 600, "backoff shows in nextFetch only")

        request = try singleRequest(try h.runTimer())
        #expect(h.now == info.lastFetch + secs(1200))
        try h.engine.finish(mail, requestID: request.requestID, result: .failed)
        _ = h.events.take()
        info = try h.info(mail, "t")
        #expect(info.nextFetch == info.lastFetch + secs(2400))
        #expect(info.failureCount == 2)

        request = try singleRequest(try h.runTimer())
        _ = h.events.take()
        try h.engine.finish(mail, requestID: request.requestID, result: success)
        #expect(h.events.take() == [.fetchFinished(task: key(mail, "t"), requestID: request.requestID, result: success)])
        info = try h.info(mail, "t")
        #expect(info.lastResult == success)
        // NoData also starts a stretch of the (adaptive) interval: ×1.5.
        #expect(info.nextFetch == info.lastFetch + secs(success == .noData ? 900 : 600), "a success resets the backoff")
        #expect(info.failureCount == 2, "the failure count is a total, not reset")
        #expect(info.fetchCount == 3)
        #expect(info.state == .scheduled)
    }

    @Test func anExpiredFetchCountsAsFailedAndBacksOff() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let request = try singleRequest(try h.runTimer())
        let requestedAt = h.now
        let timeout = secs(Int64(h.engine.config.fetchTimeout))
        #expect(h.engine.nextDeadline() == requestedAt + timeout)

        h.advance(to: requestedAt + timeout - secs(1))
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty, "not expired before the timeout")
        #expect(try h.info(mail, "t").state == .running)

        h.advance(to: requestedAt + timeout)
        try h.engine.fireDue()
        #expect(
            h.events.take() == [
                .fetchExpired(destination: mail.connection, task: key(mail, "t"), requestID: request.requestID),
                .fetchFinished(task: key(mail, "t"), requestID: request.requestID, result: .failed),
            ])
        let info = try h.info(mail, "t")
        #expect(info.state == .scheduled)
        #expect(info.lastResult == .failed)
        #expect(info.failureCount == 1)
        #expect(info.nextFetch == requestedAt + secs(1200))
        #expect(h.engine.nextDeadline() == requestedAt + secs(1200))

        // Too late to answer it now.
        expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(mail, requestID: request.requestID, result: .newData)
        }
        let history = try h.engine.history(key(mail, "t"))
        #expect(history == [
            HistoryEntry(requestID: request.requestID, task: key(mail, "t"), requestedAt: requestedAt, finishedAt: 0, result: .failed)
        ])
    }

    @Test func backoffDoublesAndIsCapped() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 3600))
        var delays: [Int64] = []
        for _ in 0..<7 {
            let request = try singleRequest(try h.runTimer())
            try h.engine.finish(mail, requestID: request.requestID, result: .failed)
            _ = h.events.take()
            let info = try h.info(mail, "t")
            delays.append((info.nextFetch - info.lastFetch) / 1_000_000)
        }
        #expect(delays == [7200, 14400, 28800, 57600, 86400, 86400, 86400])
    }

    @Test func aTaskNeverHasTwoFetchesOutstanding() throws {
        var config = DaemonConfig()
        config.fetchTimeout = 3600
        config.minimumIntervalFloor = 60
        let h = try EngineHarness(config: config)
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 60, stopOnTerminate: false))
        let request = try singleRequest(try h.runTimer())
        let timeout = h.now + secs(3600)

        // Many intervals pass while the app sits on the fetch.
        for _ in 0..<5 {
            h.advance(seconds: 120)
            try h.engine.fireDue()
        }
        #expect(h.events.take().isEmpty)
        #expect(h.engine.nextDeadline() == timeout, "only the timeout is pending")
        #expect(try h.engine.trigger(mail, name: "t") == request.requestID)
        #expect(try h.engine.triggerTask(key(mail, "t")) == request.requestID)
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 60, stopOnTerminate: false))
        #expect(h.events.take().isEmpty, "no second FetchRequested")
        #expect(try h.info(mail, "t").state == .running)
        #expect(try h.info(mail, "t").fetchCount == 1)
        #expect(try h.engine.history(key(mail, "t")).count == 1)
    }

    @Test func finishRefusesAnotherAppsNeverSentFinishedAndExpiredRequests() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        try h.engine.register(news, name: "t", options: TaskOptions(minimumInterval: 600))
        let events = try h.runTimer()
        #expect(events.count == 2)
        var ids: [TaskKey: UInt64] = [:]
        for event in events {
            if case .fetchRequested(_, let task, let id) = event { ids[task] = id }
        }
        let mailID = try #require(ids[key(mail, "t")])
        let newsID = try #require(ids[key(news, "t")])

        // Another app's request, and the same app id under another uid.
        expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(mail, requestID: newsID, result: .newData)
        }
        expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(otherUser, requestID: mailID, result: .newData)
        }
        // Never handed out.
        expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(mail, requestID: 9999, result: .newData)
        }
        #expect(h.events.take().isEmpty)
        #expect(try h.info(news, "t").state == .running, "a refused finish leaves the fetch open")

        try h.engine.finish(mail, requestID: mailID, result: .newData)
        #expect(h.events.take() == [.fetchFinished(task: key(mail, "t"), requestID: mailID, result: .newData)])
        // Already finished.
        let error = expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(mail, requestID: mailID, result: .newData)
        }
        #expect(error?.message.contains("\(mailID)") == true)
        #expect(h.events.take().isEmpty)

        // Expired.
        h.advance(seconds: Int64(h.engine.config.fetchTimeout))
        try h.engine.fireDue()
        _ = h.events.take()
        expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(news, requestID: newsID, result: .newData)
        }
    }

    @Test func registeringTheSameTaskAgainStoresNothing() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let commits = try h.memoryStore.commits
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(try h.memoryStore.commits == commits)
        try h.engine.register(mailSecond, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(try h.memoryStore.commits == commits + 1, "a new connection is a change")
        try h.engine.register(mailSecond, name: "t", options: TaskOptions(minimumInterval: 900))
        #expect(try h.memoryStore.commits == commits + 2, "new options are a change")
    }

    @Test func aPendingFetchCanBeAnsweredAndCountsAsDeliveredThen() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        let id = try h.engine.triggerTask(key(mail, "t"))
        #expect(try h.info(mail, "t").state == .pending)
        #expect(h.events.take().isEmpty)
        h.advance(seconds: 5)
        try h.engine.finish(mail, requestID: id, result: .newData)
        #expect(h.events.take() == [.fetchFinished(task: key(mail, "t"), requestID: id, result: .newData)])
        let info = try h.info(mail, "t")
        #expect(info.state == .scheduled)
        #expect(info.fetchCount == 1)
        #expect(info.lastFetch == h.clock.now())
        #expect(info.nextFetch == h.clock.now() + secs(600))
    }

    @Test func finishAfterUnregisterIsAnUnknownRequest() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let request = try singleRequest(try h.runTimer())
        try h.engine.unregister(mail, name: "t")
        expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(mail, requestID: request.requestID, result: .newData)
        }
        // Registering a task of that name again does not revive the old request.
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        expectFetchError(.unknownRequest) { () throws(FetchError) in
            try h.engine.finish(mail, requestID: request.requestID, result: .newData)
        }
        #expect(h.events.take().isEmpty)
        // Nothing expires for the removed fetch either.
        #expect(h.engine.nextDeadline() == h.now + secs(600))
    }

    @Test func finishRecordsHistoryOldestFirst() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        var expected: [HistoryEntry] = []
        for result in [FetchResult.newData, .noData, .failed] {
            let request = try singleRequest(try h.runTimer())
            let requestedAt = h.now
            h.advance(seconds: 5)
            try h.engine.finish(mail, requestID: request.requestID, result: result)
            _ = h.events.take()
            expected.append(
                HistoryEntry(
                    requestID: request.requestID, task: key(mail, "t"), requestedAt: requestedAt, finishedAt: h.now,
                    result: result))
        }
        #expect(try h.engine.history(key(mail, "t")) == expected)
        expectFetchError(.noSuchTask) { () throws(FetchError) in try h.engine.history(key(mail, "other")) }
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.history(key(AppKey(uid: 1000, appID: "bad id"), "t")) }
    }
}

/// TriggerFetch, the manager's TriggerTask, delivery and connections leaving.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineTriggerTests {
    @Test func triggerFiresAtOnceAndReturnsTheOpenRequest() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        h.advance(seconds: 10)
        let id = try h.engine.trigger(mail, name: "t")
        let request = try singleRequest(h.events.take())
        #expect(request.requestID == id)
        #expect(request.destination == mail.connection)
        #expect(try h.info(mail, "t").state == .running)
        #expect(try h.info(mail, "t").lastFetch == h.start + secs(10))

        #expect(try h.engine.trigger(mail, name: "t") == id, "the open request's id")
        #expect(h.events.take().isEmpty, "no second FetchRequested")

        try h.engine.finish(mail, requestID: id, result: .newData)
        _ = h.events.take()
        let next = try h.engine.trigger(mail, name: "t")
        #expect(next > id)
        #expect(try singleRequest(h.events.take()).requestID == next)
        // A trigger counts as the last fetch: the schedule restarts from it.
        try h.engine.finish(mail, requestID: next, result: .newData)
        #expect(try h.info(mail, "t").nextFetch == h.now + secs(600))
    }

    @Test func triggerBindsTheTaskToTheCaller() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let id = try h.engine.trigger(mailSecond, name: "t")
        #expect(try singleRequest(h.events.take()).destination == mailSecond.connection)
        try h.engine.finish(mailSecond, requestID: id, result: .noData)

        h.engine.connectionClosed(mail.connection)
        #expect(try h.engine.isRegistered(mail, name: "t"), "no longer bound to the first connection")
        h.engine.connectionClosed(mailSecond.connection)
        #expect(try !h.engine.isRegistered(mail, name: "t"), "stopOnTerminate follows the new binding")
    }

    @Test func triggerErrors() throws {
        let h = try EngineHarness()
        expectFetchError(.noSuchTask) { () throws(FetchError) in try h.engine.trigger(mail, name: "missing") }
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.trigger(mail, name: "no spaces") }
        try h.engine.register(mail, name: "t", options: TaskOptions())
        expectFetchError(.noSuchTask) { () throws(FetchError) in try h.engine.trigger(news, name: "t") }
        expectFetchError(.noSuchTask) { () throws(FetchError) in try h.engine.triggerTask(key(news, "t")) }
        expectFetchError(.invalidArgs) { () throws(FetchError) in try h.engine.triggerTask(key(AppKey(uid: 1000, appID: ""), "t")) }
        #expect(h.events.take().isEmpty)
    }

    @Test func triggerOnADeniedAppIsRefused() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions())
        try h.engine.setAppEnabled(mailApp, enabled: false)
        expectFetchError(.denied) { () throws(FetchError) in try h.engine.trigger(mail, name: "t") }
        expectFetchError(.denied) { () throws(FetchError) in try h.engine.triggerTask(key(mail, "t")) }
        #expect(h.events.take().isEmpty)
        #expect(try h.info(mail, "t").state == .paused)
        #expect(try h.info(mail, "t").fetchCount == 0)
    }

    @Test func triggerOnARestrictedAppIsRefused() throws {
        // The task was registered before the administrator restricted the app.
        let store = MemoryTaskStore()
        let clock = ManualClock()
        do {
            let before = try EngineHarness(store: store, clock: clock)
            try before.engine.register(mail, name: "t", options: TaskOptions(stopOnTerminate: false))
        }
        var config = DaemonConfig()
        config.restrictedApps = [mailApp.appID]
        let h = try EngineHarness(config: config, store: store, clock: clock)
        #expect(h.engine.status(of: mailApp) == .restricted)
        expectFetchError(.restricted) { () throws(FetchError) in try h.engine.trigger(mail, name: "t") }
        expectFetchError(.restricted) { () throws(FetchError) in try h.engine.triggerTask(key(mail, "t")) }
        expectFetchError(.restricted) { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions(stopOnTerminate: false))
        }
        #expect(try h.info(mail, "t").state == .paused)
        h.advance(seconds: 6000)
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty)
        #expect(h.engine.nextDeadline() == nil)
    }

    @Test func managerTriggerWithoutAConnectionStaysPendingUntilTheAppRegisters() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        #expect(try h.engine.isRegistered(mail, name: "t"))

        let id = try h.engine.triggerTask(key(mail, "t"))
        #expect(h.events.take().isEmpty, "no connection, not activatable: nothing is sent")
        var info = try h.info(mail, "t")
        #expect(info.state == .pending)
        #expect(info.nextFetch == 0)
        #expect(info.fetchCount == 0, "not delivered yet")
        #expect(h.engine.nextDeadline() == nil, "a pending fetch has no timeout running and nothing polls")

        // Time passes: still one pending fetch, no second one.
        h.advance(seconds: 5000)
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty)
        #expect(try h.engine.triggerTask(key(mail, "t")) == id)
        #expect(h.events.take().isEmpty)

        // The app comes back: the pending fetch goes to it, its timeout starting now.
        try h.engine.register(mailSecond, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        #expect(h.events.take() == [.fetchRequested(destination: mailSecond.connection, task: key(mail, "t"), requestID: id)])
        info = try h.info(mail, "t")
        #expect(info.state == .running)
        #expect(info.fetchCount == 1)
        #expect(info.lastFetch == h.now)
        #expect(h.engine.nextDeadline() == h.now + secs(Int64(h.engine.config.fetchTimeout)))
        try h.engine.finish(mailSecond, requestID: id, result: .newData)
        #expect(try h.info(mail, "t").state == .scheduled)
    }

    @Test func aDueTaskWithoutAConnectionKeepsOnePendingFetch() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        #expect(try h.runTimer().isEmpty)
        #expect(try h.info(mail, "t").state == .pending)
        #expect(h.engine.nextDeadline() == nil)
        h.advance(seconds: 6000)
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty)
        #expect(try h.engine.history(key(mail, "t")).count == 1, "one pending fetch, not one per interval")

        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        #expect(requestedIDs(h.events.take()).count == 1)
    }

    @Test func appTriggerDeliversAPendingFetchToTheCaller() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        let pending = try h.engine.triggerTask(key(mail, "t"))
        #expect(h.events.take().isEmpty)

        // TriggerFetch binds and fires at once: the open (pending) request goes out now.
        let id = try h.engine.trigger(mailSecond, name: "t")
        #expect(id == pending)
        #expect(h.events.take() == [.fetchRequested(destination: mailSecond.connection, task: key(mail, "t"), requestID: id)])
        #expect(try h.info(mail, "t").state == .running)
        try h.engine.finish(mailSecond, requestID: id, result: .noData)
    }

    @Test func managerTriggerStartsAnActivatableApp() throws {
        let h = try EngineHarness(isActivatable: { $0 == mailApp })
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        let id = try h.engine.triggerTask(key(mail, "t"))
        #expect(h.events.take() == [.activateAndRequest(task: key(mail, "t"), requestID: id)])
        #expect(try h.info(mail, "t").state == .running)
        // The start has its own time on top of the fetch's timeout.
        #expect(h.engine.nextDeadline() == h.now + secs(Int64(h.engine.config.fetchTimeout + FetchEngine.activationTimeout)))

        // Activation failed: the fetch waits as pending for the app to register.
        h.engine.activationFailed(task: key(mail, "t"), requestID: id)
        #expect(try h.info(mail, "t").state == .pending)
        #expect(h.engine.nextDeadline() == nil)
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        #expect(h.events.take() == [.fetchRequested(destination: mail.connection, task: key(mail, "t"), requestID: id)])
    }

    @Test func managerTriggerRetriesAPendingFetchByActivation() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        let pending = try h.engine.triggerTask(key(mail, "t"))
        #expect(h.events.take().isEmpty)
        // The app became activatable (its service file was installed): triggering again starts it.
        h.engine.isActivatable = { _ in true }
        #expect(try h.engine.triggerTask(key(mail, "t")) == pending)
        #expect(h.events.take() == [.activateAndRequest(task: key(mail, "t"), requestID: pending)])
        // Unanswered, it expires towards the app's well-known name.
        let events = try h.runTimer()
        #expect(events.contains(.fetchExpired(destination: mailApp.appID, task: key(mail, "t"), requestID: pending)))
    }

    @Test func managerTriggerWithABoundConnectionDeliversToIt() throws {
        let h = try EngineHarness(isActivatable: { _ in true })
        try h.engine.register(mail, name: "t", options: TaskOptions())
        let id = try h.engine.triggerTask(key(mail, "t"))
        #expect(h.events.take() == [.fetchRequested(destination: mail.connection, task: key(mail, "t"), requestID: id)])
    }

    @Test func aScheduledFetchStartsAnActivatableAppWithoutAConnection() throws {
        let h = try EngineHarness(isActivatable: { $0 == mailApp })
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        try h.engine.register(news, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        h.engine.connectionClosed(mail.connection)
        h.engine.connectionClosed(news.connection)
        let events = try h.runTimer()
        #expect(events.count == 1)
        guard case .activateAndRequest(let task, _) = events.first else {
            Issue.record("expected activateAndRequest, got \(events)")
            return
        }
        #expect(task == key(mail, "t"))
        #expect(try h.info(news, "t").state == .pending)
    }

    @Test func connectionClosedRemovesStopOnTerminateTasksAndUnbindsTheOthers() throws {
        let h = try EngineHarness()
        let store = try h.memoryStore
        try h.engine.register(mail, name: "stops", options: TaskOptions(minimumInterval: 600))
        try h.engine.register(mail, name: "stays", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        try h.engine.register(news, name: "other", options: TaskOptions(minimumInterval: 600))

        let commits = store.commits
        h.engine.connectionClosed(":1.999")
        #expect(store.commits == commits, "an unrelated connection changes nothing")

        h.engine.connectionClosed(mail.connection)
        #expect(try !h.engine.isRegistered(mail, name: "stops"))
        #expect(try h.engine.isRegistered(mail, name: "stays"))
        #expect(try h.engine.isRegistered(news, name: "other"))
        #expect(store.state.tasks.map(\.key.name).sorted() == ["other", "stays"], "the removal is stored")
        #expect(store.state.tasks.first { $0.key.name == "stays" }?.binding == nil)
        #expect(!h.engine.boundConnections.contains(mail.connection))

        // When due, the unbound task waits as pending; the bound one is delivered.
        let events = try h.runTimer()
        #expect(try singleRequest(events).task == key(news, "other"))
        #expect(try h.info(mail, "stays").state == .pending)
    }

    @Test func connectionClosedWhileAFetchRunsLetsItExpire() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        let request = try singleRequest(try h.runTimer())
        h.engine.connectionClosed(mail.connection)
        #expect(try h.info(mail, "t").state == .running)
        let events = try h.runTimer()
        #expect(events.contains(.fetchExpired(destination: mail.connection, task: key(mail, "t"), requestID: request.requestID)))
        #expect(try h.info(mail, "t").lastResult == .failed)
    }
}

/// The app calls that read and remove tasks.
@Suite(.timeLimit(.minutes(1)))
struct FetchEngineAppCallTests {
    @Test func unregisterRemovesOnlyThatTask() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "a", options: TaskOptions())
        try h.engine.register(mail, name: "b", options: TaskOptions())
        try h.engine.unregister(mail, name: "a")
        #expect(try !h.engine.isRegistered(mail, name: "a"))
        #expect(try h.engine.isRegistered(mail, name: "b"))
        let error = expectFetchError(.noSuchTask) { () throws(FetchError) in try h.engine.unregister(mail, name: "a") }
        #expect(error?.message.contains("'a'") == true)
        expectFetchError(.noSuchTask) { () throws(FetchError) in try h.engine.unregister(news, name: "b") }
        #expect(try h.engine.isRegistered(mail, name: "b"))
    }

    @Test func unregisterAllTouchesOnlyTheCallersApp() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "a", options: TaskOptions())
        try h.engine.register(mail, name: "b", options: TaskOptions())
        try h.engine.register(news, name: "a", options: TaskOptions())
        try h.engine.register(otherUser, name: "a", options: TaskOptions())
        try h.engine.unregisterAll(mail)
        #expect(h.engine.tasks(of: mailApp).isEmpty)
        #expect(h.engine.tasks(of: newsApp).count == 1)
        #expect(h.engine.tasks(of: otherUserApp).count == 1)
        #expect(try h.memoryStore.state.tasks.count == 2)
        try h.engine.unregisterAll(mail)
        #expect(h.engine.tasks(of: newsApp).count == 1)
    }

    @Test func registeredTasksAreTheAppsOwnSortedByName() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "zeta", options: TaskOptions(minimumInterval: 700))
        try h.engine.register(mail, name: "alpha", options: TaskOptions(minimumInterval: 900, stopOnTerminate: false, startOnBoot: true))
        try h.engine.register(news, name: "beta", options: TaskOptions())
        let infos = h.engine.tasks(of: mailApp)
        #expect(infos.map(\.key.name) == ["alpha", "zeta"])
        #expect(infos[0].options == TaskOptions(minimumInterval: 900, stopOnTerminate: false, startOnBoot: true))
        #expect(infos[0].lastResult == nil)
        #expect(infos[0].failureCount == 0)
        #expect(try h.engine.isRegistered(news, name: "beta"))
        #expect(try !h.engine.isRegistered(mail, name: "beta"))
        #expect(try !h.engine.isRegistered(otherUser, name: "zeta"), "another uid's app of the same id is another app")
    }

    @Test func listTasksFiltersByUidAndSorts() throws {
        let h = try EngineHarness()
        try h.engine.register(news, name: "b", options: TaskOptions())
        try h.engine.register(mail, name: "z", options: TaskOptions())
        try h.engine.register(mail, name: "a", options: TaskOptions())
        try h.engine.register(otherUser, name: "a", options: TaskOptions())
        #expect(h.engine.listTasks(uid: 1000).map(\.key) == [key(mail, "a"), key(mail, "z"), key(news, "b")])
        #expect(h.engine.listTasks(uid: 1001).map(\.key) == [key(otherUser, "a")])
        #expect(h.engine.listTasks(uid: 4242).isEmpty)
        #expect(h.engine.listTasks(uid: nil).count == 4)
    }
}

/// Due times are wall-clock instants, so a step of the wall clock while the
/// daemon is idle moves "now", never the due times: the daemon's timer is
/// armed at those instants (and re-armed when the clock is set).
@Suite(.timeLimit(.minutes(1)))
struct ClockStepSchedulingTests {
    @Test func aStepForwardMakesWhatItPassedDueAtOnce() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "hourly", options: TaskOptions(minimumInterval: 3600))
        let due = h.start + secs(3600)
        h.clock.set(h.start + secs(2 * 3600))  // NTP steps the clock two hours ahead
        #expect(h.engine.nextDeadline() == due, "the due time did not move with the clock")
        try h.engine.fireDue()
        #expect(try singleRequest(h.events.take()).task == key(mail, "hourly"))
    }

    @Test func aStepBackwardMakesNothingEarly() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "hourly", options: TaskOptions(minimumInterval: 3600))
        let due = h.start + secs(3600)
        h.clock.set(h.start - secs(600))  // set back ten minutes
        try h.engine.fireDue()
        #expect(h.events.take().isEmpty, "nothing fires before its wall-clock time")
        #expect(h.engine.nextDeadline() == due)
        h.clock.set(due)
        try h.engine.fireDue()
        #expect(try singleRequest(h.events.take()).task == key(mail, "hourly"))
    }
}
