import Testing

@testable import BackgroundFetchCore
import TestKit

/// Results drive the schedule: NoData answers in a row stretch an adaptive
/// task's interval (×1.5 each, at most 4× and a day), NewData ends it,
/// `adaptive: false` keeps it fixed; on the injected clock.
@Suite(.timeLimit(.minutes(1)))
struct AdaptiveTests {
    @Test func theStretchFollowsTheRule() {
        let hour: UInt32 = 3600
        #expect(Stretch.delay(interval: hour, consecutiveNoData: 0) == secs(3600))
        #expect(Stretch.delay(interval: hour, consecutiveNoData: 1) == secs(5400))
        #expect(Stretch.delay(interval: hour, consecutiveNoData: 2) == secs(8100))
        #expect(Stretch.delay(interval: hour, consecutiveNoData: 3) == secs(12_150))
        #expect(Stretch.delay(interval: hour, consecutiveNoData: 4) == secs(14_400), "at most 4×")
        #expect(Stretch.delay(interval: hour, consecutiveNoData: 1000) == secs(14_400))
        #expect(Stretch.delay(interval: 12 * hour, consecutiveNoData: 2) == secs(86_400), "at most a day")
        #expect(Stretch.delay(interval: 48 * hour, consecutiveNoData: 3) == secs(48 * 3600), "never less than the interval")
    }

    /// Answers `result` to the task's next fetch and returns the gap to the one after.
    func answer(_ h: EngineHarness, _ result: FetchResult) throws -> Int64 {
        let id = try singleRequest(try h.runTimer()).requestID
        try h.engine.finish(mail, requestID: id, result: result)
        _ = h.events.take()
        return try h.info(mail, "t").nextFetch - h.now
    }

    @Test func noDataStretchesNewDataRestoresAndTheInfoSaysWhy() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(try answer(h, .noData) == secs(900))
        var info = try h.info(mail, "t")
        #expect(info.reason == .noNewData && info.consecutiveNoData == 1 && info.effectiveInterval == 600, "effectiveInterval never includes it")
        #expect(try answer(h, .noData) == secs(1350))
        #expect(try answer(h, .noData) == secs(2025))
        #expect(try answer(h, .noData) == secs(2400))
        #expect(try answer(h, .noData) == secs(2400), "at most 4×")
        #expect(try answer(h, .newData) == secs(600), "NewData: back at once")
        info = try h.info(mail, "t")
        #expect(info.reason == .interval && info.consecutiveNoData == 0)
    }

    @Test func failuresBackOffAsBeforeAndBreakTheRunOfNoData() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        #expect(try answer(h, .noData) == secs(900))
        #expect(try answer(h, .failed) == secs(1200), "backoff: doubled, not stretched")
        let info = try h.info(mail, "t")
        #expect(info.reason == .backoff && info.consecutiveFailures == 1 && info.consecutiveNoData == 0)
        #expect(try answer(h, .noData) == secs(900), "a new run of NoData starts at one")
    }

    @Test func aFixedTaskIsNeverStretched() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, adaptive: false))
        for _ in 0..<3 { #expect(try answer(h, .noData) == secs(600)) }
        let info = try h.info(mail, "t")
        #expect(info.reason == .interval && info.consecutiveNoData == 3, "counted, not applied")
    }

    @Test func theStretchSurvivesARestart() throws {
        let store = MemoryTaskStore()
        let clock = ManualClock()
        let h = try EngineHarness(store: store, clock: clock)
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600, stopOnTerminate: false))
        _ = try answer(h, .noData)
        _ = try answer(h, .noData)
        let again = try EngineHarness(store: store, clock: clock)
        let info = try again.info(mail, "t")
        #expect(info.consecutiveNoData == 2 && info.nextFetch - clock.now() == secs(1350))
    }
}
