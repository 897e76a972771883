import Testing

@testable import BackgroundFetchCore
import TestKit

@Suite(.timeLimit(.minutes(1)))
struct BackoffTests {
    @Test func aSuccessKeepsTheInterval() {
        #expect(Backoff.delay(interval: 600, consecutiveFailures: 0) == secs(600))
        #expect(Backoff.delay(interval: 1, consecutiveFailures: 0) == secs(1))
        #expect(Backoff.delay(interval: 604_800, consecutiveFailures: 0) == secs(604_800))
    }

    @Test func eachFailureDoublesUpTo32Times() {
        let delays = (0...8).map { Backoff.delay(interval: 600, consecutiveFailures: UInt32($0)) / 1_000_000 }
        #expect(delays == [600, 1200, 2400, 4800, 9600, 19200, 19200, 19200, 19200])
    }

    @Test func theDelayIsCappedAtADay() {
        let delays = (0...7).map { Backoff.delay(interval: 3600, consecutiveFailures: UInt32($0)) / 1_000_000 }
        #expect(delays == [3600, 7200, 14400, 28800, 57600, 86400, 86400, 86400])
        #expect(Backoff.delay(interval: 50_000, consecutiveFailures: 1) == secs(86_400))
    }

    @Test func anIntervalLongerThanTheCapIsNeverShortened() {
        for failures: UInt32 in [0, 1, 5, 40] {
            #expect(Backoff.delay(interval: 604_800, consecutiveFailures: failures) >= secs(604_800))
            #expect(Backoff.delay(interval: 100_000, consecutiveFailures: failures) >= secs(100_000))
        }
    }

    @Test func manyFailuresDoNotOverflow() {
        for interval: UInt32 in [1, 60, 600, 86_400, 604_800] {
            let huge = Backoff.delay(interval: interval, consecutiveFailures: .max)
            #expect(huge >= secs(Int64(interval)))
            #expect(huge == Backoff.delay(interval: interval, consecutiveFailures: Backoff.maximumDoublings))
        }
    }

    @Test func theDelayNeverShrinksAsFailuresGrow() {
        for interval: UInt32 in [1, 45, 600, 7_000, 86_400, 300_000] {
            var previous = Int64.min
            for failures: UInt32 in 0...10 {
                let delay = Backoff.delay(interval: interval, consecutiveFailures: failures)
                #expect(delay >= previous, "interval \(interval), failures \(failures)")
                previous = delay
            }
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct BatchingTests {
    typealias C = Batching.Candidate

    @Test func nothingToDo() {
        #expect(Batching.wakeTime([]) == nil)
    }

    @Test func aSingleFetchGoesOutOnTime() {
        #expect(Batching.wakeTime([C(due: secs(1000), interval: 600)]) == secs(1000))
    }

    @Test func theLatestIsATenthOfTheIntervalAfterTheDueTime() {
        #expect(C(due: secs(1000), interval: 600).latest == secs(1060))
        #expect(C(due: 0, interval: 1).latest == 100_000)
    }

    @Test func twoFetchesCloseTogetherShareTheLaterDueTime() {
        let a = C(due: secs(1000), interval: 1000)
        let b = C(due: secs(1050), interval: 1000)
        #expect(Batching.wakeTime([a, b]) == secs(1050))
        #expect(Batching.wakeTime([b, a]) == secs(1050), "the order given does not matter")
    }

    @Test func aFetchJustOutsideTheWindowDoesNotJoin() {
        let a = C(due: secs(1000), interval: 1000)
        #expect(Batching.wakeTime([a, C(due: secs(1100), interval: 1000)]) == secs(1100), "the edge is inside")
        #expect(Batching.wakeTime([a, C(due: secs(1100) + 1, interval: 1000)]) == secs(1000))
    }

    @Test func theWindowNarrowsToTheTightestFetchTaken() {
        // a may wait until 1100; b (short interval) until 1060; c at 1080 fits a but not b.
        let a = C(due: secs(1000), interval: 1000)
        let b = C(due: secs(1050), interval: 100)
        let c = C(due: secs(1080), interval: 1000)
        #expect(Batching.wakeTime([c, b, a]) == secs(1050))
        // Without b, c joins a.
        #expect(Batching.wakeTime([a, c]) == secs(1080))
    }

    @Test func equalDueTimesAreOneWakeUp() {
        let wake = Batching.wakeTime([C(due: secs(500), interval: 60), C(due: secs(500), interval: 6000)])
        #expect(wake == secs(500))
    }

    @Test func aFetchWithATinyWindowGoesOutOnTime() {
        // The first fetch's own window is under a second: the next, a second later, cannot join.
        let a = C(due: secs(1000), interval: 5)
        let b = C(due: secs(1001), interval: 10_000)
        #expect(Batching.wakeTime([a, b]) == secs(1000))
    }

    @Test func neverEarlyNeverLaterThanTheFirstFetchAllows() {
        var random = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let count = Int(random.next(in: 1...6))
            let candidates = (0..<count).map { _ in
                C(due: secs(random.next(in: 0...2000)), interval: UInt32(random.next(in: 1...3000)))
            }
            guard let wake = Batching.wakeTime(candidates) else {
                Issue.record("no wake time for \(candidates)")
                continue
            }
            let first = candidates.min { $0.due < $1.due }!
            #expect(wake >= first.due, "never before the earliest due time")
            // Every fetch that goes out at `wake` (those due by then) is within its window.
            for candidate in candidates where candidate.due <= wake {
                #expect(wake <= candidate.latest, "\(candidate) sent at \(wake) in \(candidates)")
            }
            #expect(candidates.contains { $0.due == wake }, "the wake-up is some fetch's due time")
            #expect(Batching.wakeTime(candidates.reversed()) == wake)
        }
    }
}
