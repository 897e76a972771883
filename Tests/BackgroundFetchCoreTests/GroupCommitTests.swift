import Foundation
import Testing

@testable import BackgroundFetchCore
import TestKit

/// Several changes, one transaction: nothing is visible (durable) until the
/// group ends, then all of it is.
@Suite(.timeLimit(.minutes(1)))
struct GroupCommitTests {
    func record(_ name: String) -> TaskRecord {
        TaskRecord(key: TaskKey(app: mailApp, name: name), options: TaskOptions(), registeredAt: 1_700_000_000_000_000)
    }

    func batch(_ names: String...) -> StoreBatch {
        var batch = StoreBatch()
        for name in names { batch.save(record(name)) }
        return batch
    }

    @Test func aGroupBecomesDurableOnlyWhenItEnds() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        let reader = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        store.beginRound()
        try store.write(batch("a"))
        try store.write(batch("b", "c"))
        // Another connection sees only what is committed.
        #expect(try reader.load().tasks.isEmpty)
        // The writer reads its own uncommitted group.
        #expect(try store.load().tasks.count == 3)
        try store.commitRound()
        #expect(try reader.load().tasks.map(\.key.name).sorted() == ["a", "b", "c"])
    }

    @Test func outsideAGroupEachCommitIsDurableAtOnce() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        let reader = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        try store.write(batch("a"))
        #expect(try reader.load().tasks.map(\.key.name) == ["a"])
        // An empty round commits nothing and leaves later writes durable at once.
        store.beginRound()
        try store.commitRound()
        try store.write(batch("b"))
        #expect(try reader.load().tasks.count == 2)
    }

    @Test func theEngineReloadsWhatTheStoreHolds() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        let clock = ManualClock()
        let engine = FetchEngine(config: DaemonConfig(), store: store, clock: clock, logger: quietLogger)
        try engine.restore(bootID: "b") { _, _ in true }
        try engine.register(mail, name: "kept", options: TaskOptions())
        // A registration whose group is then lost (as after a failed COMMIT).
        let other = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        other.beginRound()
        try other.write(batch("x"))
        #expect(try other.load().tasks.count == 2)
        // Simulate the rollback by reloading the engine from a store that never got "x".
        try engine.reload()
        #expect(try engine.isRegistered(mail, name: "kept"))
        #expect(try !engine.isRegistered(mail, name: "x"))
        try other.commitRound()
        try engine.reload()
        #expect(try engine.isRegistered(mail, name: "x"))
    }
}

/// The engine says which calls stored a change, so the host knows which
/// replies wait for the round's commit; it never has to guess.
@Suite(.timeLimit(.minutes(1)))
struct EngineRoundTests {
    @Test func theEngineSaysWhichCallsStoredAChange() throws {
        let h = try EngineHarness()
        let store = try #require(h.store as? MemoryTaskStore)
        h.engine.beginRound()
        let register = try h.engine.trackingWrites { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions())
        }
        #expect(register.wroteState)
        let again = try h.engine.trackingWrites { () throws(FetchError) in
            try h.engine.register(mail, name: "t", options: TaskOptions())
        }
        #expect(!again.wroteState, "registering the same task again stores nothing")
        let read = h.engine.trackingWrites { h.engine.status(of: mail.app) }
        #expect(read.result == .available && !read.wroteState)
        let refused = h.engine.trackingWrites { () -> Bool in
            (try? h.engine.unregister(mail, name: "none")) != nil
        }
        #expect(!refused.result && !refused.wroteState, "a refusal changes nothing")
        #expect(store.rounds == 0)
        try h.engine.commitRound()
        #expect(store.rounds == 1)
        try h.engine.commitRound()
        #expect(store.rounds == 1, "no round is open: nothing to commit")
    }
}
