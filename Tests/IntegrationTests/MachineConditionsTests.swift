import DBus
import Foundation
import TestKit
import Testing

/// Constraints, power saving and sleep end to end: the real bgfetchd on a
/// session bus, following python3-dbusmock's NetworkManager, UPower,
/// power-profiles-daemon and logind on a second private bus that it takes
/// for the system bus (or, in one test, serving that bus itself).
@Suite(.timeLimit(.minutes(2)))
struct MachineConditionsTests {
    /// A daemon on its own bus, with `system` as its system bus, and one app.
    struct Setup {
        let system: MockSystemBus
        let bus: TestBus
        let daemon: DaemonProcess
        let app: ServiceClient

        init(system: MockSystemBus, servingSystemBus: Bool = false, config: String? = nil) throws {
            self.system = system
            bus = servingSystemBus ? system.bus : try TestBus()
            var arguments = ["--minimum-interval-floor", "1"]
            if let config {
                let path = bus.directory.appendingPathComponent("bgfetchd.conf")
                try config.write(to: path, atomically: true, encoding: .utf8)
                arguments += ["--config", path.path]
            }
            daemon = try DaemonProcess(bus: bus, arguments: arguments)
            daemon.environment = system.daemonEnvironment
            try daemon.start()
            app = try ServiceClient(bus: bus, ownName: Fixture.appID)
        }

        /// Registers `task` due one second from now with `options` added.
        func register(_ task: String, _ options: [String: DBusValue] = [:]) throws {
            var all: [String: DBusValue] = .options(interval: 1)
            all.merge(options) { $1 }
            try app.register(task, all)
        }

        func info(_ task: String) throws -> [String: DBusValue] { try app.tasks()[task] ?? [:] }

        /// Waits until `task` is waiting for `reason`: its due time came and
        /// the daemon held it back (the state is the barrier that proves the
        /// fetch would have gone by now).
        func waitUntilWaiting(_ task: String, for reason: String) async throws {
            try await eventually("\(task) waiting for \(reason)") {
                let info = try self.info(task)
                return info["state"]?.stringValue == "waiting" && info["reason"]?.stringValue == reason ? true : nil
            }
        }

        func requests(_ task: String) -> [Message] {
            app.signals("FetchRequested").filter { $0.arguments.first?.stringValue == task }
        }

        func waitForRequest(_ task: String, count: Int = 1) async throws -> UInt64 {
            try await eventually("FetchRequested #\(count) for \(task)") {
                let matching = self.requests(task)
                return matching.count >= count ? matching[count - 1].arguments[1].uint64Value : nil
            }
        }

        func finish(_ requestID: UInt64, _ result: UInt32 = 2) throws {
            try app.call("FinishFetch", [.uint64(requestID), .uint32(result)])
        }
    }

    static let requiresNetwork: [String: DBusValue] = ["requiresNetwork": .bool(true)]

    @Test func aFetchWaitsForTheNetworkAndGoesOnceWhenItReturns() async throws {
        let system = try MockSystemBus()
        try await system.startOfflineNetworkManager()
        let s = try Setup(system: system)
        try s.register("sync", Self.requiresNetwork)
        try s.register("plain")
        try await s.waitUntilWaiting("sync", for: "network")
        _ = try await s.waitForRequest("plain")  // positive control: an unconstrained task went
        #expect(s.requests("sync").isEmpty)
        #expect(try s.info("sync")["nextFetch"]?.uint64Value ?? 0 > 0, "a waiting task says when it fell due")

        try system.setNetworkState(70)  // connected globally
        let id = try await s.waitForRequest("sync")
        let running = try s.info("sync")
        #expect(running["state"]?.stringValue == "running" && running["reason"]?.stringValue == "running")
        #expect(running["failureCount"]?.uint64Value == 0 && running["consecutiveFailures"]?.uint32Value == 0)
        #expect(s.requests("sync").count == 1, "fired once")  // (no second fetch while one is outstanding)
        try s.finish(id)

        // Metered: requiresUnmeteredNetwork waits for Metered to leave yes.
        try system.setMetered(1)
        try s.register("big", ["requiresUnmeteredNetwork": .bool(true)])
        try await s.waitUntilWaiting("big", for: "unmetered-network")
        try system.setMetered(2)
        _ = try await s.waitForRequest("big")
    }

    @Test func aServiceThatVanishesCountsAsMetAndOneThatAppearsIsFollowed() async throws {
        let system = try MockSystemBus()
        let s = try Setup(system: system)
        // No NetworkManager on the bus: the constraint counts as met.
        try s.register("first", Self.requiresNetwork)
        try s.finish(try await s.waitForRequest("first"))
        try s.app.call("UnregisterTask", [.string("first")])

        // It appears, offline: a task due now waits.
        try await system.startOfflineNetworkManager()
        try s.register("second", Self.requiresNetwork)
        try await s.waitUntilWaiting("second", for: "network")
        // It vanishes: met again, and the waiting fetch goes.
        try await system.stop(.networkManager)
        _ = try await s.waitForRequest("second")
    }

    @Test func powerAndBatteryHoldTheirTasks() async throws {
        let system = try MockSystemBus()
        try await system.start(.upower)
        try system.setOnBattery(true)
        try system.setWarningLevel(3)  // low
        let s = try Setup(system: system)
        try s.register("power", ["requiresExternalPower": .bool(true)])
        try s.register("battery", ["requiresBatteryNotLow": .bool(true)])
        try await s.waitUntilWaiting("power", for: "external-power")
        try await s.waitUntilWaiting("battery", for: "battery-low")

        try system.setWarningLevel(1)  // none
        _ = try await s.waitForRequest("battery")
        #expect(s.requests("power").isEmpty, "still on battery")
        try system.setOnBattery(false)
        _ = try await s.waitForRequest("power")
    }

    @Test func powerSaverHoldsDueFetchesUnlessTheConfigSaysNo() async throws {
        let system = try MockSystemBus()
        try await system.start(.powerProfiles)
        try system.setActiveProfile("power-saver")
        let s = try Setup(system: system)
        try s.register("t")
        try await s.waitUntilWaiting("t", for: "power-saver")
        try system.setActiveProfile("balanced")
        _ = try await s.waitForRequest("t")

        let lenient = try Setup(system: system, config: "[Scheduling]\nDeferInPowerSaver=no\n")
        try system.setActiveProfile("power-saver")
        try lenient.register("t")
        _ = try await lenient.waitForRequest("t")
    }

    @Test func sleepHoldsNewFetchesAndOneInhibitorCoversTheOutstandingOnes() async throws {
        let system = try MockSystemBus()
        try await system.start(.logind)
        let s = try Setup(system: system)
        let other = try s.app("org.example.Feeds")
        defer { other.close() }
        try other.register("news", .options(interval: 1))
        try s.register("inbox")
        let inbox = try await s.waitForRequest("inbox")
        try await eventually("FetchRequested for news") { other.signals("FetchRequested").first }
        // Due again in an hour, not in a second: the release below is not
        // followed by a new fetch.
        try other.register("news", .options(interval: 3600))
        try s.app.register("inbox", .options(interval: 3600))
        // Two outstanding fetches, one delay inhibitor naming both apps.
        let held = try await eventually("logind's inhibitor") { try system.inhibitors().first }
        #expect(try system.inhibitors().count == 1)
        #expect(held[0] == "sleep" && held[1] == "bgfetch" && held[3] == "delay", "\(held)")
        #expect(held[2].contains(Fixture.appID) && held[2].contains("org.example.Feeds"), "\(held)")
        try s.finish(inbox)
        #expect(try system.inhibitors().count == 1, "one fetch is still outstanding")
        try other.call("FinishFetch", [.uint64(other.signals("FetchRequested")[0].arguments[1].uint64Value ?? 0), .uint32(1)])
        try await eventually("the inhibitor released") { try system.inhibitors().isEmpty ? true : nil }

        // Preparing to sleep: nothing new goes; on resume, the missed fetch goes once.
        try system.prepareForSleep(true)
        try s.register("inbox")  // due within a second
        try await s.waitUntilWaiting("inbox", for: "suspended")
        try system.prepareForSleep(false)
        _ = try await s.waitForRequest("inbox", count: 2)
        #expect(s.requests("inbox").count == 2)
    }

    /// logind refusing the inhibitor (polkit, say) is asked once, not at
    /// every turn of the loop while the fetch is outstanding.
    @Test func aRefusedInhibitorIsNotAskedForAgainAndAgain() async throws {
        let system = try MockSystemBus()
        try await system.start(.logind)
        try system.call(
            .logind, path: "/org/freedesktop/login1", interface: "org.freedesktop.DBus.Mock", "AddMethod",
            [.string("org.freedesktop.login1.Manager"), .string("Inhibit"), .string("ssss"), .string("h"),
             .string("raise dbus.exceptions.DBusException('not allowed', name='org.freedesktop.DBus.Error.AccessDenied')")])
        let s = try Setup(system: system)
        try s.register("inbox")
        let id = try await s.waitForRequest("inbox")
        try await eventually("the daemon's one Inhibit call") { s.daemon.log.contains("cannot delay sleep") ? true : nil }
        // Traffic that turns the loop many times while the fetch is outstanding.
        for _ in 0..<50 { _ = try s.app.call("GetStatus") }
        let calls = try system.call(.logind, path: "/org/freedesktop/login1", interface: "org.freedesktop.DBus.Mock", "GetMethodCalls", [.string("Inhibit")])
        #expect(calls.first?.arrayValue?.count == 1, "\(calls)")
        try s.finish(id)
    }

    @Test func triggersIgnoreConstraints() async throws {
        let system = try MockSystemBus()
        try await system.startOfflineNetworkManager()
        let s = try Setup(system: system)
        try s.app.register("sync", ["requiresNetwork": .bool(true), "minimumInterval": .uint32(3600)])
        let id = try #require(try s.app.call("TriggerFetch", [.string("sync")]).first?.uint64Value)
        #expect(try await s.waitForRequest("sync") == id)
    }

    /// On the system bus the one connection serves the apps and follows the
    /// machine's services.
    @Test func aSystemBusDaemonFollowsTheServicesOnItsOwnConnection() async throws {
        let system = try MockSystemBus()
        try await system.startOfflineNetworkManager()
        let s = try Setup(system: system, servingSystemBus: true)
        try s.register("sync", Self.requiresNetwork)
        try await s.waitUntilWaiting("sync", for: "network")
        try system.setNetworkState(70)
        _ = try await s.waitForRequest("sync")
    }

    /// Following four services costs no wake-up: signals only, no polling.
    @Test func followingEveryServiceIdlesWithoutWakeUps() async throws {
        let system = try MockSystemBus()
        for service in MockSystemBus.Service.allCases { try await system.start(service) }
        let s = try Setup(system: system)
        try s.app.register("far", ["minimumInterval": .uint32(86_400), "requiresNetwork": .bool(true)])
        let pid = try #require(s.daemon.pid)
        try await Task.sleep(for: .milliseconds(300))
        let before = ProcStats.totalContextSwitches(pid)
        try await Task.sleep(for: .seconds(3))
        let after = ProcStats.totalContextSwitches(pid)
        #expect(before > 0, "the daemon's threads are readable in /proc")
        #expect(after - before <= 2, "the idle daemon switched context \(after - before) times in 3 s")
    }

    @Test func badConstraintOptionsAreRefused() async throws {
        let system = try MockSystemBus()
        let s = try Setup(system: system)
        let wrongType = s.app.error("RegisterTask", [.string("t"), .vardict(["requiresNetwork": .uint32(1)])])
        #expect(wrongType?.name == DBusError.Name.invalidArgs && wrongType?.message.contains("requiresNetwork") == true)
        let launch = s.app.error("RegisterTask", [.string("t"), .vardict(["launch": .string("sometimes")])])
        #expect(launch?.name == DBusError.Name.invalidArgs && launch?.message.contains("activate, never") == true, "\(String(describing: launch))")
        #expect(try s.app.tasks().isEmpty)
    }
}

extension MachineConditionsTests.Setup {
    func app(_ name: String) throws -> ServiceClient { try ServiceClient(bus: bus, ownName: name) }
}
