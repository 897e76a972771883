import DBus
import Foundation
import TestKit
import Testing

/// Fetches on schedule, unicast delivery, expiry, and connection lifetime.
@Suite(.timeLimit(.minutes(2)))
struct DeliveryTests {
    @Test func aTaskFiresAfterItsIntervalAndOnlyItsAppHearsIt() throws {
        let f = try Fixture()
        let other = try f.app("org.example.Feeds")
        defer { other.close() }
        let registered = Date()
        try f.client.register("tick", .options(interval: 1))
        let signal = try f.client.waitForSignal("FetchRequested", timeout: 10)
        #expect(Date().timeIntervalSince(registered) >= 0.95)
        #expect(signal.arguments.first == .string("tick"))
        #expect(signal.destination == f.client.uniqueName)
        // The other app subscribed to every signal of the service. Finishing
        // the fetch broadcasts FetchFinished, which it must hear (its match
        // rule works) and which the daemon sends after the FetchRequested
        // (the bus keeps that order): once it is in, a FetchRequested sent to
        // the other app would be in too.
        let id = try #require(signal.arguments.last?.uint64Value)
        try f.client.call("FinishFetch", [.uint64(id), .uint32(1)])
        let finished = try other.waitForSignal("FetchFinished")
        #expect(finished.arguments == [.string(Fixture.appID), .string("tick"), .uint64(id), .uint32(1)])
        #expect(other.signals("FetchRequested").isEmpty)
    }

    @Test func anUnansweredFetchExpiresAndBacksOff() throws {
        let f = try Fixture(["--minimum-interval-floor", "1", "--fetch-timeout", "1"])
        try f.client.register("slow", .options(interval: 3600))
        let id = try #require(try f.client.call("TriggerFetch", [.string("slow")]).first?.uint64Value)
        let expired = try f.client.waitForSignal("FetchExpired", timeout: 10)
        #expect(expired.arguments == [.string("slow"), .uint64(id)])
        #expect(expired.destination == f.client.uniqueName)
        let info = try #require(try f.client.tasks()["slow"])
        #expect(info["lastResult"] == .uint32(3))
        #expect(info["failureCount"] == .uint64(1))
        #expect(info["state"] == .string("scheduled"))
        // Backed off: the next fetch is two intervals after the last.
        let last = try #require(info["lastFetch"]?.uint64Value)
        #expect(info["nextFetch"]?.uint64Value == last + 7_200_000_000)
        #expect(f.client.error("FinishFetch", [.uint64(id), .uint32(1)])?.name == "org.bgfetch.BackgroundFetch1.Error.UnknownRequest")
    }

    @Test func stopOnTerminateRemovesTheTaskWhenTheConnectionLeaves() throws {
        let f = try Fixture()
        let leaving = try f.app("org.example.Leaving")
        try leaving.register("goes")
        try leaving.register("stays", .options(stopOnTerminate: false))
        leaving.close()
        let watcher = try f.app("org.example.Leaving")
        defer { watcher.close() }
        try waitUntil { (try? watcher.tasks().keys.sorted()) == ["stays"] }
        #expect(try watcher.tasks()["stays"]?["state"] == .string("scheduled"))
    }

    @Test func aFetchForAnAppWithNoConnectionWaitsAndIsDeliveredOnRegister() throws {
        let f = try Fixture()
        let first = try f.app("org.example.Offline")
        try first.register("sync", .options(interval: 3600, stopOnTerminate: false))
        first.close()
        try waitUntil {
            let list = try? f.client.call("ListTasks", interface: ServiceClient.manager).first?.arrayValue
            return list?.count == 1
        }
        // Triggered while the app is gone: it waits as pending.
        let id = try #require(
            try f.client.call("TriggerTask", [.string("org.example.Offline"), .string("sync")], interface: ServiceClient.manager)
                .first?.uint64Value)
        let again = try f.app("org.example.Offline")
        defer { again.close() }
        #expect(try again.tasks()["sync"]?["state"] == .string("pending"))
        try again.register("sync", .options(interval: 3600, stopOnTerminate: false))
        let signal = try again.waitForSignal("FetchRequested")
        #expect(signal.arguments == [.string("sync"), .uint64(id)])
        try again.call("FinishFetch", [.uint64(id), .uint32(1)])
        #expect(try again.tasks()["sync"]?["lastResult"] == .uint32(1))
    }

    @Test func aDisabledAppIsPausedAndDeniedThenResumes() throws {
        let f = try Fixture()
        try f.client.register("tick", .options(interval: 1))
        try f.client.call("SetAppEnabled", [.string(Fixture.appID), .bool(false)], interface: ServiceClient.manager)
        #expect(try f.client.call("GetStatus") == [.uint32(1)])
        #expect(try f.client.tasks()["tick"]?["state"] == .string("paused"))
        #expect(f.client.error("TriggerFetch", [.string("tick")])?.name == "org.bgfetch.BackgroundFetch1.Error.Denied")
        #expect(f.client.error("RegisterTask", [.string("new"), .vardict([:])])?.name == "org.bgfetch.BackgroundFetch1.Error.Denied")
        try f.client.call("SetAppEnabled", [.string(Fixture.appID), .bool(true)], interface: ServiceClient.manager)
        #expect(try f.client.call("GetStatus") == [.uint32(3)])
        _ = try f.client.waitForSignal("FetchRequested", timeout: 10)
    }

    @Test func theStarSwitchDeniesEveryAppAndLeavesPerAppSwitches() throws {
        let f = try Fixture()
        let other = try f.app("org.example.Feeds")
        defer { other.close() }
        try f.client.call("SetAppEnabled", [.string("org.example.Feeds"), .bool(false)], interface: ServiceClient.manager)
        try f.client.call("SetAppEnabled", [.string("*"), .bool(false)], interface: ServiceClient.manager)
        #expect(try f.client.call("GetStatus") == [.uint32(1)])
        #expect(try other.call("GetStatus") == [.uint32(1)])
        try f.client.call("SetAppEnabled", [.string("*"), .bool(true)], interface: ServiceClient.manager)
        #expect(try f.client.call("GetStatus") == [.uint32(3)])
        #expect(try other.call("GetStatus") == [.uint32(1)])
    }

    @Test func restrictedByTheAdministratorWinsOverTheUsersSwitch() throws {
        let f = try Fixture(configFile: "[Apps]\nRestricted=org.example.Tracker;org.example.Miner\n")
        let tracker = try f.app("org.example.Tracker")
        defer { tracker.close() }
        #expect(try tracker.call("GetStatus") == [.uint32(2)])
        let error = tracker.error("RegisterTask", [.string("t"), .vardict([:])])
        #expect(error?.name == "org.bgfetch.BackgroundFetch1.Error.Restricted")
        try tracker.call("SetAppEnabled", [.string("org.example.Tracker"), .bool(true)], interface: ServiceClient.manager)
        #expect(try tracker.call("GetStatus") == [.uint32(2)])
        #expect(try f.client.call("GetStatus") == [.uint32(3)])
    }

    @Test func managerListsTriggersAndKeepsHistoryAndBroadcastsFinished() throws {
        let f = try Fixture()
        let monitor = try f.app("org.example.Monitor")
        defer { monitor.close() }
        try f.client.register("sync", .options(interval: 3600))
        let list = try #require(try f.client.call("ListTasks", interface: ServiceClient.manager).first?.arrayValue)
        let row = try #require(list.first?.structValue)
        #expect(row[0] == .string(Fixture.appID))
        #expect(row[1] == .string("sync"))
        #expect(row[2].vardictValue?["uid"] == .uint32(getuid()))
        #expect(row[2].vardictValue?["state"] == .string("scheduled"))

        var ids: [UInt64] = []
        for (n, result) in [UInt32(1), 2, 3].enumerated() {
            let id = try #require(
                try monitor.call("TriggerTask", [.string(Fixture.appID), .string("sync")], interface: ServiceClient.manager)
                    .first?.uint64Value)
            let signal = try f.client.waitForSignal("FetchRequested", count: n + 1)
            #expect(signal.arguments[1] == .uint64(id))
            try f.client.call("FinishFetch", [.uint64(id), .uint32(result)])
            let finished = try monitor.waitForSignal("FetchFinished", count: n + 1)
            #expect(finished.arguments == [.string(Fixture.appID), .string("sync"), .uint64(id), .uint32(result)])
            ids.append(id)
        }
        #expect(ids == ids.sorted() && Set(ids).count == 3)
        let history = try #require(
            try f.client.call("GetHistory", [.string(Fixture.appID), .string("sync")], interface: ServiceClient.manager)
                .first?.arrayValue)
        #expect(history.count == 3)
        let results = history.compactMap { $0.structValue?[2] }
        #expect(results == [.uint32(1), .uint32(2), .uint32(3)])
        for entry in history {
            let fields = try #require(entry.structValue)
            #expect((fields[1].uint64Value ?? 0) >= (fields[0].uint64Value ?? .max))
        }
        let missing = f.client.error("GetHistory", [.string(Fixture.appID), .string("nope")], interface: ServiceClient.manager)
        #expect(missing?.name == "org.bgfetch.BackgroundFetch1.Error.NoSuchTask")
    }

    @Test func managerNamesOfOtherUsersNeedRoot() throws {
        let f = try Fixture()
        try f.client.register("sync", .options(interval: 3600))
        let me = getuid()
        // Our own uid written out is fine; as root, another uid is allowed too.
        try f.client.call("SetAppEnabled", [.string("\(me)/\(Fixture.appID)"), .bool(true)], interface: ServiceClient.manager)
        let bad = f.client.error("SetAppEnabled", [.string("x/\(Fixture.appID)"), .bool(true)], interface: ServiceClient.manager)
        #expect(bad?.name == DBusError.Name.invalidArgs)
        if me == 0 {
            try f.client.call("SetAppEnabled", [.string("1000/org.example.Other"), .bool(false)], interface: ServiceClient.manager)
            #expect(try f.client.call("GetStatus") == [.uint32(3)])
        }
    }
}

/// Polls `condition` until it holds (for effects that cross processes).
func waitUntil(timeout: TimeInterval = 10, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(10_000)
    }
    throw HarnessError("condition not met within \(timeout) s")
}
