import DBus
import Foundation
import TestKit
import Testing

/// Restarts, crashes and new boots: nothing acknowledged is lost.
@Suite(.timeLimit(.minutes(2)))
struct PersistenceTests {
    @Test func everyAcknowledgedChangeSurvivesKill9() throws {
        let f = try Fixture()
        for n in 0..<40 {
            try f.client.register("task-\(n)", .options(interval: UInt32(100 + n), stopOnTerminate: n % 2 == 0))
        }
        try f.client.call("UnregisterTask", [.string("task-7")])
        try f.client.call("SetMinimumInterval", [.uint32(500)])
        try f.client.call("SetAppEnabled", [.string("org.example.Other"), .bool(false)], interface: ServiceClient.manager)
        let before = try f.client.tasks()
        try f.daemon.stop(signal: SIGKILL)
        try f.daemon.start()
        let after = try f.client.tasks()
        #expect(after.count == 39)
        #expect(after["task-7"] == nil)
        for (name, info) in before {
            #expect(after[name]?["minimumInterval"] == info["minimumInterval"], "\(name)")
            #expect(after[name]?["stopOnTerminate"] == info["stopOnTerminate"], "\(name)")
            #expect(after[name]?["effectiveInterval"] == .uint32(500), "\(name)")
        }
        let other = try f.app("org.example.Other")
        defer { other.close() }
        #expect(try other.call("GetStatus") == [.uint32(1)])
        let check = try Command.run(
            "/usr/bin/sqlite3", [f.daemon.stateDirectory.appendingPathComponent("bgfetch.db").path, "PRAGMA integrity_check"])
        #expect(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
    }

    @Test func aRestartKeepsBindingsOfConnectionsStillOnTheBus() throws {
        let f = try Fixture()
        try f.client.register("sync", .options(interval: 3600))
        let firstID = try #require(try f.client.call("TriggerFetch", [.string("sync")]).first?.uint64Value)
        _ = try f.client.waitForSignal("FetchRequested")
        try f.client.call("FinishFetch", [.uint64(firstID), .uint32(1)])
        #expect(try f.daemon.stop() == 0)
        try f.daemon.start()
        // The task is still bound to our connection: a manager trigger reaches us at once.
        let id = try #require(
            try f.client.call("TriggerTask", [.string(Fixture.appID), .string("sync")], interface: ServiceClient.manager)
                .first?.uint64Value)
        #expect(id > firstID)
        let signal = try f.client.waitForSignal("FetchRequested", count: 2)
        #expect(signal.arguments == [.string("sync"), .uint64(id)])
    }

    @Test func tasksOfConnectionsThatLeftWhileDownAreHandledAtStart() throws {
        let f = try Fixture()
        let app = try f.app("org.example.Gone")
        try app.register("temporary")
        try app.register("durable", .options(interval: 3600, stopOnTerminate: false))
        try f.daemon.stop(signal: SIGKILL)
        app.close()
        try f.daemon.start()
        let back = try f.app("org.example.Gone")
        defer { back.close() }
        let tasks = try back.tasks()
        #expect(tasks.keys.sorted() == ["durable"])
        // Unbound: a trigger waits as pending until the app registers again.
        _ = try back.call("TriggerTask", [.string("org.example.Gone"), .string("durable")], interface: ServiceClient.manager)
        // The reply to this call comes after any signal the daemon sent us
        // before it: the barrier for the check below.
        #expect(try back.tasks()["durable"]?["state"] == .string("pending"))
        #expect(back.signals("FetchRequested").isEmpty)
        // Positive control: registered again, the app gets the waiting fetch
        // on this very connection.
        try back.register("durable", .options(interval: 3600, stopOnTerminate: false))
        let delivered = try back.waitForSignal("FetchRequested")
        #expect(delivered.arguments.first == .string("durable"))
    }

    @Test func aNewBootResumesStartOnBootTasksAndParksTheOthers() throws {
        let f = try Fixture()
        let app = try f.app("org.example.Boot")
        try app.register("onBoot", .options(interval: 3600, stopOnTerminate: false, startOnBoot: true))
        try app.register("waits", .options(interval: 3600, stopOnTerminate: false))
        try app.register("gone", .options(interval: 3600))
        try f.daemon.stop()
        app.close()
        try f.daemon.setBootID("boot-2")
        try f.daemon.start()
        let back = try f.app("org.example.Boot")
        defer { back.close() }
        let tasks = try back.tasks()
        #expect(tasks.keys.sorted() == ["onBoot", "waits"])
        #expect(tasks["onBoot"]?["state"] == .string("scheduled"))
        #expect(tasks["waits"]?["state"] == .string("dormant"))
        #expect(tasks["waits"]?["nextFetch"] == .uint64(0))
        try back.register("waits", .options(interval: 3600, stopOnTerminate: false))
        #expect(try back.tasks()["waits"]?["state"] == .string("scheduled"))
    }

    @Test func aFetchMissedWhileDownFiresOnceSoonAfter() throws {
        let f = try Fixture()
        try f.client.register("tick", .options(interval: 2, stopOnTerminate: false))
        try f.daemon.stop()
        usleep(5_000_000)  // several intervals pass with the daemon down
        let restarted = Date()
        try f.daemon.start()
        let first = try f.client.waitForSignal("FetchRequested", timeout: 5)
        let firstCame = Date()
        #expect(firstCame.timeIntervalSince(restarted) < 5)
        let firstID = try #require(first.arguments.last?.uint64Value)
        // Once: the reply to FinishFetch comes after every signal the daemon
        // sent us before it, so a second request for the missed intervals,
        // sent with the first, would be here by now. (Unanswered, the fetch
        // itself would hold back any other until it expired: hence the answer.)
        try f.client.call("FinishFetch", [.uint64(firstID), .uint32(1)])
        #expect(f.client.signals("FetchRequested").count == 1)
        // No burst afterwards either: the next fetch comes an interval after
        // this one, not at once for the intervals missed while down.
        let second = try f.client.waitForSignal("FetchRequested", count: 2, timeout: 10)
        let gap = Date().timeIntervalSince(firstCame)
        #expect(gap >= 1.5, "the next fetch came \(gap) s after the missed one; the interval is 2 s")
        #expect(second.arguments.last?.uint64Value != firstID)
    }

    @Test func aDamagedDatabaseIsMovedAsideAndTheDaemonStarts() throws {
        let bus = try TestBus()
        let daemon = try DaemonProcess(bus: bus)
        try FileManager.default.createDirectory(at: daemon.stateDirectory, withIntermediateDirectories: true)
        let db = daemon.stateDirectory.appendingPathComponent("bgfetch.db")
        try Data(repeating: 0x42, count: 8192).write(to: db)
        try daemon.start()
        let files = try FileManager.default.contentsOfDirectory(atPath: daemon.stateDirectory.path)
        #expect(files.contains { $0.hasPrefix("bgfetch.db.corrupt-") })
        #expect(daemon.log.contains("damaged"))
        let client = try ServiceClient(bus: bus, ownName: "org.example.After")
        defer { client.close() }
        try client.register("works")
        #expect(try client.tasks().keys.sorted() == ["works"])
    }
}
