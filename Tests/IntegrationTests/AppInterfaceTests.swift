import DBus
import Foundation
import TestKit
import Testing

/// Every member of the app interface, called over a real bus.
@Suite(.timeLimit(.minutes(2)))
struct AppInterfaceTests {
    @Test func registerListAndUnregister() throws {
        let f = try Fixture()
        try f.client.register("refresh", .options(interval: 900))
        #expect(try f.client.call("IsTaskRegistered", [.string("refresh")]) == [.bool(true)])
        #expect(try f.client.call("IsTaskRegistered", [.string("other")]) == [.bool(false)])
        let info = try #require(try f.client.tasks()["refresh"])
        #expect(info["minimumInterval"] == .uint32(900))
        #expect(info["effectiveInterval"] == .uint32(900))
        #expect(info["stopOnTerminate"] == .bool(true))
        #expect(info["startOnBoot"] == .bool(false))
        #expect(info["state"] == .string("scheduled"))
        #expect(info["lastFetch"] == .uint64(0))
        #expect(info["lastResult"] == .uint32(0))
        #expect(info["fetchCount"] == .uint64(0))
        #expect(info["failureCount"] == .uint64(0))
        let next = try #require(info["nextFetch"]?.uint64Value)
        let now = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        #expect(next > now + 890_000_000 && next <= now + 900_000_000)

        try f.client.call("UnregisterTask", [.string("refresh")])
        #expect(try f.client.tasks().isEmpty)
        let error = f.client.error("UnregisterTask", [.string("refresh")])
        #expect(error?.name == "org.bgfetch.BackgroundFetch1.Error.NoSuchTask")
        #expect(error?.message.contains("refresh") == true)
    }

    @Test func defaultsAndReRegistration() throws {
        let f = try Fixture()
        try f.client.register("a")
        #expect(try f.client.tasks()["a"]?["minimumInterval"] == .uint32(600))
        try f.client.register("a", .options(interval: 120, stopOnTerminate: false, startOnBoot: true))
        let info = try #require(try f.client.tasks()["a"])
        #expect(info["minimumInterval"] == .uint32(120))
        #expect(info["startOnBoot"] == .bool(true))
        #expect(try f.client.tasks().count == 1)
    }

    @Test func unregisterAllTouchesOnlyTheCallersApp() throws {
        let f = try Fixture()
        let other = try f.app("org.example.Feeds")
        defer { other.close() }
        try f.client.register("a")
        try f.client.register("b")
        try other.register("a")
        try f.client.call("UnregisterAllTasks")
        #expect(try f.client.tasks().isEmpty)
        #expect(try other.tasks().keys.sorted() == ["a"])
    }

    @Test func appsSeeOnlyTheirOwnTasks() throws {
        let f = try Fixture()
        let other = try f.app("org.example.Feeds")
        defer { other.close() }
        try f.client.register("mail-only")
        #expect(try other.tasks().isEmpty)
        #expect(try other.call("IsTaskRegistered", [.string("mail-only")]) == [.bool(false)])
        #expect(other.error("UnregisterTask", [.string("mail-only")])?.name == "org.bgfetch.BackgroundFetch1.Error.NoSuchTask")
        #expect(try f.client.tasks().keys.sorted() == ["mail-only"])
    }

    @Test func setMinimumIntervalRaisesTheEffectiveInterval() throws {
        let f = try Fixture(["--minimum-interval-floor", "30"])
        try f.client.register("a", .options(interval: 10))
        #expect(try f.client.tasks()["a"]?["effectiveInterval"] == .uint32(30))
        try f.client.call("SetMinimumInterval", [.uint32(3600)])
        let info = try #require(try f.client.tasks()["a"])
        #expect(info["minimumInterval"] == .uint32(10))
        #expect(info["effectiveInterval"] == .uint32(3600))
        #expect(f.client.error("SetMinimumInterval", [.uint32(0)])?.name == DBusError.Name.invalidArgs)
        #expect(f.client.error("SetMinimumInterval", [.uint32(604_801)])?.name == DBusError.Name.invalidArgs)
    }

    @Test func statusAndProperties() throws {
        let f = try Fixture(["--fetch-timeout", "7", "--minimum-interval-floor", "42"])
        #expect(try f.client.call("GetStatus") == [.uint32(3)])
        func property(_ name: String) throws -> DBusValue? {
            try f.client.call("Get", [.string("org.bgfetch.BackgroundFetch1"), .string(name)], interface: "org.freedesktop.DBus.Properties").first
        }
        #expect(try property("FetchTimeout") == .variant(.uint32(7)))
        #expect(try property("MinimumIntervalFloor") == .variant(.uint32(42)))
        #expect(try property("DefaultMinimumInterval") == .variant(.uint32(600)))
        #expect(try property("Version")?.unwrapped.stringValue?.isEmpty == false)
        let all = try f.client.call("GetAll", [.string("org.bgfetch.BackgroundFetch1")], interface: "org.freedesktop.DBus.Properties")
        #expect(all.first?.vardictValue?.keys.sorted() == ["DefaultMinimumInterval", "FetchTimeout", "MinimumIntervalFloor", "Version"])
        let set = f.client.error(
            "Set", [.string("org.bgfetch.BackgroundFetch1"), .string("FetchTimeout"), .variant(.uint32(1))],
            interface: "org.freedesktop.DBus.Properties")
        #expect(set?.name == DBusError.Name.propertyReadOnly)
        #expect(try f.client.call("Ping", interface: "org.freedesktop.DBus.Peer") == [])
    }

    @Test func triggerFetchDeliversAndFinishFetchAnswers() throws {
        let f = try Fixture()
        try f.client.register("sync", .options(interval: 3600))
        let id = try #require(try f.client.call("TriggerFetch", [.string("sync")]).first?.uint64Value)
        let signal = try f.client.waitForSignal("FetchRequested")
        #expect(signal.arguments == [.string("sync"), .uint64(id)])
        #expect(signal.destination == f.client.uniqueName)
        #expect(try f.client.tasks()["sync"]?["state"] == .string("running"))
        // A second trigger while the fetch is outstanding returns the same request.
        #expect(try f.client.call("TriggerFetch", [.string("sync")]) == [.uint64(id)])
        try f.client.call("FinishFetch", [.uint64(id), .uint32(2)])
        let info = try #require(try f.client.tasks()["sync"])
        #expect(info["lastResult"] == .uint32(2))
        #expect(info["fetchCount"] == .uint64(1))
        #expect(info["state"] == .string("scheduled"))
        let again = f.client.error("FinishFetch", [.uint64(id), .uint32(1)])
        #expect(again?.name == "org.bgfetch.BackgroundFetch1.Error.UnknownRequest")
        #expect(f.client.signals("FetchRequested").count == 1)
    }

    @Test func finishFetchRefusesOtherAppsRequestsAndBadResults() throws {
        let f = try Fixture()
        let other = try f.app("org.example.Feeds")
        defer { other.close() }
        try f.client.register("sync")
        let id = try #require(try f.client.call("TriggerFetch", [.string("sync")]).first?.uint64Value)
        #expect(other.error("FinishFetch", [.uint64(id), .uint32(1)])?.name == "org.bgfetch.BackgroundFetch1.Error.UnknownRequest")
        let bad = f.client.error("FinishFetch", [.uint64(id), .uint32(4)])
        #expect(bad?.name == DBusError.Name.invalidArgs)
        #expect(bad?.message.contains("4") == true)
        #expect(f.client.error("FinishFetch", [.uint64(id + 1000), .uint32(1)])?.name == "org.bgfetch.BackgroundFetch1.Error.UnknownRequest")
        // Still outstanding: the refusals changed nothing.
        #expect(try f.client.tasks()["sync"]?["state"] == .string("running"))
        try f.client.call("FinishFetch", [.uint64(id), .uint32(1)])
    }

    @Test func finishAfterUnregisterIsUnknownRequest() throws {
        let f = try Fixture()
        try f.client.register("sync")
        let id = try #require(try f.client.call("TriggerFetch", [.string("sync")]).first?.uint64Value)
        try f.client.call("UnregisterTask", [.string("sync")])
        #expect(f.client.error("FinishFetch", [.uint64(id), .uint32(1)])?.name == "org.bgfetch.BackgroundFetch1.Error.UnknownRequest")
    }
}
