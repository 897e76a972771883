import Testing

@testable import BackgroundFetchCore
import TestKit

/// A day of tasks through the engine on the injected clock: every fetch
/// within its window (never early, at most 10 % of its interval late), and
/// far fewer wake-ups than fetches and than systemd's coalesced timers.
@Suite(.timeLimit(.minutes(1)))
struct BatchingSimulationTests {
    @Test func aDayOfTasksKeepsEveryFetchInItsWindowWithFewWakeUps() throws {
        var simulation = DaySimulation()
        simulation.tasks = 100
        let outcome = try simulation.run()
        #expect(outcome.fetches > 2_000, "\(outcome.fetches) fetches")
        #expect(outcome.lateness.count == outcome.fetches, "every fetch's lateness was checked")
        #expect(outcome.early.isEmpty, "\(outcome.early.prefix(5))")
        #expect(outcome.late.isEmpty, "\(outcome.late.prefix(5))")
        #expect(outcome.wakeUps * 3 <= outcome.fetches, "\(outcome.wakeUps) wake-ups for \(outcome.fetches) fetches")
        let systemd = simulation.systemdTimers()
        #expect(outcome.wakeUps < systemd.wakeUps, "\(outcome.wakeUps) against systemd's \(systemd.wakeUps)")
    }

    @Test func adaptiveIntervalsSaveFetchesWhenMostAnswersAreNoData() throws {
        var simulation = DaySimulation()
        simulation.tasks = 50
        let adaptive = try simulation.run()
        simulation.adaptive = false
        let fixed = try simulation.run()
        #expect(adaptive.fetches < fixed.fetches * 3 / 4, "\(adaptive.fetches) adaptive against \(fixed.fetches) fixed")
        #expect(fixed.early.isEmpty && fixed.late.isEmpty && adaptive.early.isEmpty && adaptive.late.isEmpty)
    }

    @Test func theSystemdModelCoalescesWithinAMinute() {
        var simulation = DaySimulation()
        simulation.tasks = 1
        simulation.intervals = 600...600
        simulation.duration = 3_600
        let one = simulation.systemdTimers()
        #expect(one.fetches == one.wakeUps && one.fetches >= 4 && one.fetches <= 6)
    }

    /// A fetch held a little to share the next wake-up says so (`batched`);
    /// the one it waits for is on time (`interval`).
    @Test func aFetchMovedToShareAWakeUpSaysBatched() throws {
        let h = try EngineHarness()
        try h.engine.register(mail, name: "a", options: TaskOptions(minimumInterval: 600))
        h.advance(seconds: 30)
        try h.engine.register(news, name: "b", options: TaskOptions(minimumInterval: 600))
        #expect(h.engine.nextDeadline() == h.start + secs(630), "a's window (60 s) reaches b's due time")
        #expect(try h.info(mail, "a").reason == .batched)
        #expect(try h.info(news, "b").reason == .interval)
        #expect(requestedIDs(try h.runTimer()).count == 2, "one wake-up for both")
    }
}
