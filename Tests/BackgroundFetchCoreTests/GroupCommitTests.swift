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
        store.beginGroup()
        try store.commit(batch("a"))
        try store.commit(batch("b", "c"))
        #expect(store.writes == 2)
        // Another connection sees only what is committed.
        #expect(try reader.load().tasks.isEmpty)
        // The writer reads its own uncommitted group.
        #expect(try store.load().tasks.count == 3)
        try store.endGroup()
        #expect(try reader.load().tasks.map(\.key.name).sorted() == ["a", "b", "c"])
    }

    @Test func outsideAGroupEachCommitIsDurableAtOnce() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        let reader = try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        try store.commit(batch("a"))
        #expect(try reader.load().tasks.map(\.key.name) == ["a"])
        // An empty group commits nothing and leaves later commits direct.
        store.beginGroup()
        try store.endGroup()
        try store.commit(batch("b"))
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
        other.beginGroup()
        try other.commit(batch("x"))
        #expect(try other.load().tasks.count == 2)
        // Simulate the rollback by reloading the engine from a store that never got "x".
        try engine.reload()
        #expect(try engine.isRegistered(mail, name: "kept"))
        #expect(try !engine.isRegistered(mail, name: "x"))
        try other.endGroup()
        try engine.reload()
        #expect(try engine.isRegistered(mail, name: "x"))
    }
}
