import Testing

@testable import BackgroundFetchCore
import TestKit

/// A client asking one thing at a time is served before the backlog of a
/// flooding one; flooders take turns; each client's items keep their order.
@Suite(.timeLimit(.minutes(1)))
struct FairQueueTests {
    func drain(_ queue: inout FairQueue<String, Int>) -> [String] {
        var order: [String] = []
        while let (client, item) = queue.dequeue() { order.append("\(client)\(item)") }
        return order
    }

    @Test func aNewClientGoesBeforeABacklog() {
        var queue = FairQueue<String, Int>()
        for n in 0..<100 { queue.enqueue(n, from: "flood") }
        #expect(queue.dequeue()?.item == 0)
        queue.enqueue(0, from: "probe")
        // The flood has 99 waiting; the probe's one call is next.
        #expect(queue.dequeue()?.client == "probe")
        #expect(queue.dequeue()?.item == 1)
        #expect(queue.count == 98)
    }

    @Test func backloggedClientsTakeTurns() {
        var queue = FairQueue<String, Int>()
        for n in 0..<3 { queue.enqueue(n, from: "a") }
        for n in 0..<2 { queue.enqueue(n, from: "b") }
        queue.enqueue(0, from: "c")
        // Each is new once, then a and b alternate.
        #expect(drain(&queue) == ["a0", "b0", "c0", "a1", "b1", "a2"])
        #expect(queue.isEmpty)
    }

    @Test func aClientThatDrainedIsNewAgain() {
        var queue = FairQueue<String, Int>()
        queue.enqueue(0, from: "a")
        for n in 0..<3 { queue.enqueue(n, from: "b") }
        #expect(drain(&queue).prefix(2) == ["a0", "b0"])
        queue.enqueue(1, from: "a")
        queue.enqueue(3, from: "b")
        #expect(drain(&queue) == ["a1", "b3"])
    }

    /// A client served while new waits its turn among the old ones for its
    /// next item, so one-at-a-time clients cannot starve a backlog.
    @Test func aStreamOfNewClientsDoesNotStarveABacklog() {
        var queue = FairQueue<String, Int>()
        for n in 0..<100 { queue.enqueue(n, from: "backlog") }
        let polite = (0..<17).map { "polite\($0)" }
        for client in polite { queue.enqueue(0, from: client) }
        var backlogServed = 0
        var slices = 0
        while backlogServed < 100, slices < 1000 {
            // A slice of 16; each polite client asks again once answered.
            var answered: [String] = []
            for _ in 0..<16 {
                guard let (client, _) = queue.dequeue() else { break }
                if client == "backlog" { backlogServed += 1 } else { answered.append(client) }
            }
            for client in answered { queue.enqueue(0, from: client) }
            slices += 1
        }
        #expect(backlogServed == 100, "the backlog got \(backlogServed) of 100 in \(slices) slices")
        #expect(slices < 150)
    }

    @Test func aClientAtItsLimitIsRefusedAndOthersAreNot() {
        var queue = FairQueue<String, Int>()
        let accepted = [
            queue.enqueue(0, from: "a", limit: 2), queue.enqueue(1, from: "a", limit: 2),
            queue.enqueue(2, from: "a", limit: 2), queue.enqueue(0, from: "b", limit: 2),
        ]
        #expect(accepted == [true, true, false, true])
        #expect(queue.count(of: "a") == 2)
        _ = queue.dequeue()  // a0: room for one more
        let afterServing = queue.enqueue(3, from: "a", limit: 2)
        #expect(afterServing)
        #expect(drain(&queue) == ["b0", "a1", "a3"])
    }

    /// A flood's storage goes when its client leaves; a small queue's stays for the next client.
    @Test func aLeavingBacklogGivesItsStorageBack() {
        var queue = FairQueue<String, Int>()
        for n in 0..<(FairQueue<String, Int>.keptItems + 1) { queue.enqueue(n, from: "flood") }
        _ = drain(&queue)
        #expect(queue.backlogs.map(\.peak) == [0])
        for n in 0..<3 { queue.enqueue(n, from: "small") }
        #expect(drain(&queue) == ["small0", "small1", "small2"])
        #expect(queue.backlogs.map(\.peak) == [3])
    }

    @Test func removeAllTakesOneClientsItemsInOrder() {
        var queue = FairQueue<String, Int>()
        for n in 0..<3 { queue.enqueue(n, from: "a") }
        for n in 0..<2 { queue.enqueue(n, from: "b") }
        _ = queue.dequeue()  // a0: a is now an old client
        #expect(queue.count(of: "a") == 2)
        #expect(queue.removeAll(of: "a") == [1, 2])
        #expect(queue.removeAll(of: "a") == [])
        #expect(queue.count(of: "a") == 0)
        #expect(queue.count == 2)
        #expect(drain(&queue) == ["b0", "b1"])
    }

    @Test func everyItemComesOutOnceAndInItsClientsOrder() {
        var random = SplitMix64(seed: 11)
        var queue = FairQueue<String, Int>()
        var sent: [String: [Int]] = [:]
        var served: [String: [Int]] = [:]
        for step in 0..<5000 {
            if random.next(in: 0...2) == 0, let (client, item) = queue.dequeue() {
                served[client, default: []].append(item)
            } else {
                let client = "c\(random.next(in: 0...7))"
                queue.enqueue(step, from: client)
                sent[client, default: []].append(step)
            }
        }
        while let (client, item) = queue.dequeue() { served[client, default: []].append(item) }
        #expect(served == sent)
        #expect(queue.isEmpty)
    }
}
