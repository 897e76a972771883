import Testing

@testable import BackgroundFetchCore
import TestKit

/// The heap index gives the same wake-ups as the plain batching rule, and
/// forgets what it is told to forget.
@Suite(.timeLimit(.minutes(1)))
struct DueIndexTests {
    typealias C = Batching.Candidate

    func key(_ n: Int) -> TaskKey { TaskKey(app: mailApp, name: "t\(n)") }

    @Test func agreesWithBatchingOnRandomSchedules() {
        var random = SplitMix64(seed: 7)
        for _ in 0..<1000 {
            var index = DueIndex()
            var live: [Int: C] = [:]
            for n in 0..<Int(random.next(in: 1...12)) {
                let candidate = C(due: secs(random.next(in: 0...3000)), interval: UInt32(random.next(in: 1...4000)))
                index.set(key(n), time: candidate.due, kind: .due(interval: candidate.interval))
                live[n] = candidate
                // Some tasks move or go again: only their last record counts.
                if random.next(in: 0...3) == 0 {
                    let moved = C(due: secs(random.next(in: 0...3000)), interval: candidate.interval)
                    index.set(key(n), time: moved.due, kind: .due(interval: moved.interval))
                    live[n] = moved
                }
                if random.next(in: 0...5) == 0 {
                    index.remove(key(n))
                    live[n] = nil
                }
            }
            #expect(index.nextDeadline() == Batching.wakeTime(Array(live.values)))
            // Asking twice gives the same answer: the walk puts back what it took.
            #expect(index.nextDeadline() == Batching.wakeTime(Array(live.values)))
        }
    }

    /// The remembered wake-up is dropped by every change that could move
    /// it: asked after each change, the index agrees with the plain rule.
    @Test func theRememberedWakeUpFollowsEveryChange() {
        var random = SplitMix64(seed: 23)
        var index = DueIndex()
        var live: [Int: C] = [:]
        for _ in 0..<3000 {
            let n = Int(random.next(in: 0...150))
            switch random.next(in: 0...9) {
            case 0:
                index.remove(key(n))
                live[n] = nil
            case 1:
                // No time at all (a fetch waiting to be delivered): as removed.
                index.set(key(n), time: nil, kind: .due(interval: 1))
                live[n] = nil
            default:
                let candidate = C(due: secs(random.next(in: 0...3000)), interval: UInt32(random.next(in: 1...4000)))
                index.set(key(n), time: candidate.due, kind: .due(interval: candidate.interval))
                live[n] = candidate
            }
            // Against an index built afresh from the same tasks (more than a
            // full batch: the batch limit matters too).
            var fresh = DueIndex()
            for (n, candidate) in live { fresh.set(key(n), time: candidate.due, kind: .due(interval: candidate.interval)) }
            let got = index.nextDeadline()
            #expect(got == fresh.nextDeadline())
            if live.count <= DueIndex.largestBatch { #expect(got == Batching.wakeTime(Array(live.values))) }
        }
    }

    @Test func expiriesAndDuesAreTakenInTimeOrder() {
        var index = DueIndex()
        index.set(key(1), time: secs(50), kind: .due(interval: 600))
        index.set(key(2), time: secs(10), kind: .expiry)
        index.set(key(3), time: secs(30), kind: .due(interval: 600))
        index.set(key(4), time: secs(90), kind: .due(interval: 600))
        index.remove(key(3))
        #expect(index.nextDeadline() == secs(10))
        let taken = index.takeDue(by: secs(60))
        #expect(taken.expiring == [key(2)])
        #expect(taken.due == [key(1)])
        #expect(index.nextDeadline() == secs(90))
        #expect(index.takeDue(by: secs(60)).due.isEmpty)
    }
}
