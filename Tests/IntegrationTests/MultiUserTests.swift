import DBus
import Foundation
import TestKit
import Testing

/// The system bus: many users share one daemon and each sees only their own.
/// Runs as root (as CI does), with real unprivileged users.
@Suite(.timeLimit(.minutes(3)), .enabled(if: getuid() == 0, "needs root to create users and switch to them"))
struct MultiUserTests {
    let bus: TestBus
    let daemon: DaemonProcess
    let a: TestUsers.User
    let b: TestUsers.User

    init() throws {
        a = try TestUsers.user(TestUsers.names[0])
        b = try TestUsers.user(TestUsers.names[1])
        bus = try TestBus(config: "system-bus.conf", substitutions: ["@POLICY_DIR@": Paths.packageRoot.appendingPathComponent("dbus").path])
        let config = bus.directory.appendingPathComponent("bgfetchd.conf")
        try "[Limits]\nTasksPerUser=2\n[Apps]\nRestricted=org.example.Tracker\n".write(to: config, atomically: true, encoding: .utf8)
        daemon = try DaemonProcess(bus: bus, arguments: ["--config", config.path, "--minimum-interval-floor", "1"])
        daemon.asSystemBus = true
        try daemon.start()
    }

    func run(_ user: TestUsers.User?, _ operations: [[Any]]) throws -> [Any] {
        try TestUsers.runClient(as: user, bus: bus, operations)
    }

    @Test func eachUserSeesOnlyTheirOwnAndRootSeesAll() throws {
        let options: [String: Any] = ["stopOnTerminate": false]
        _ = try run(a, [["own", "org.example.Mail"], ["call", "app", "RegisterTask", ["a-task", options]]])
        _ = try run(b, [["own", "org.example.Mail"], ["call", "app", "RegisterTask", ["b-task", options]]])
        let seenByA = try run(a, [["own", "org.example.Mail"], ["call", "app", "GetRegisteredTasks", []], ["call", "manager", "ListTasks", []]])
        let aTasks = try #require(seenByA[1] as? [[Any]])
        #expect(aTasks.map { $0[0] as? String } == ["a-task"])
        let aList = try #require(seenByA[2] as? [[Any]])
        #expect(aList.count == 1)
        #expect((aList.first?[2] as? [String: Any])?["uid"] as? Int == Int(a.uid))

        let seenByRoot = try run(nil, [["call", "manager", "ListTasks", []]])
        let all = try #require(seenByRoot[0] as? [[Any]])
        let uids = Set(all.compactMap { ($0[2] as? [String: Any])?["uid"] as? Int })
        #expect(uids == [Int(a.uid), Int(b.uid)])
    }

    @Test func crossUserCallsFail() throws {
        let aResults = try run(a, [
            ["own", "org.example.Mail"], ["call", "app", "RegisterTask", ["shared", ["stopOnTerminate": false]]],
            ["call", "app", "TriggerFetch", ["shared"]],
        ])
        let requestID = try #require(aResults[2] as? Int)
        let bResults = try run(b, [
            ["own", "org.example.Mail"],
            ["call", "app", "UnregisterTask", ["shared"]],
            ["call", "app", "FinishFetch", [requestID, 1]],
            ["call", "manager", "TriggerTask", ["\(a.uid)/org.example.Mail", "shared"]],
            ["call", "manager", "SetAppEnabled", ["\(a.uid)/org.example.Mail", false]],
            ["call", "manager", "GetHistory", ["\(a.uid)/org.example.Mail", "shared"]],
        ])
        #expect(bResults.errorName(1) == "org.bgfetch.BackgroundFetch1.Error.NoSuchTask")
        #expect(bResults.errorName(2) == "org.bgfetch.BackgroundFetch1.Error.UnknownRequest")
        #expect(bResults.errorName(3) == "org.bgfetch.BackgroundFetch1.Error.AccessDenied")
        #expect(bResults.errorName(4) == "org.bgfetch.BackgroundFetch1.Error.AccessDenied")
        #expect(bResults.errorName(5) == "org.bgfetch.BackgroundFetch1.Error.AccessDenied")
        // A's task and status are untouched; root may act for A.
        let after = try run(a, [["own", "org.example.Mail"], ["call", "app", "IsTaskRegistered", ["shared"]], ["call", "app", "GetStatus", []]])
        #expect(after[1] as? Bool == true)
        #expect(after[2] as? Int == 3)
        let root = try run(nil, [["call", "manager", "GetHistory", ["\(a.uid)/org.example.Mail", "shared"]]])
        #expect((root[0] as? [Any])?.count == 1)
    }

    @Test func aFetchForOneUserNeverReachesAnother() throws {
        // A and B both run org.example.Mail. A's connection takes the app's
        // name, registers (the daemon keeps the identity it saw first) and
        // lets the name go; B takes it. A's fetch, if it were sent to the
        // app's name or to everyone, would reach B.
        let aClient = try ScriptedClient("a", as: a, bus: bus, [
            ["own", "org.example.Mail"], ["listen"],
            ["call", "app", "RegisterTask", ["ping", [:] as [String: Any]]],
            ["release", "org.example.Mail"], ["ready"],
            ["await-owner", "org.example.Mail", 30],
            ["call", "app", "TriggerFetch", ["ping"]], ["until", "FetchRequested", "ping", 20],
        ])
        try aClient.waitUntilReady()
        // B listens to every signal of the service (before it takes the name,
        // which is when A goes on) and has a task of its own, the barrier:
        // root triggers it once A has its fetch. The daemon keeps the order of
        // what it sends B, so had A's fetch gone to B too, it would have come
        // before the barrier.
        let listener = try ScriptedClient("b", as: b, bus: bus, [
            ["listen"], ["own", "org.example.Mail"],
            ["call", "app", "RegisterTask", ["b-barrier", [:] as [String: Any]]],
            ["ready"], ["until", "FetchRequested", "b-barrier", 30],
        ])
        try listener.waitUntilReady()
        let aResults = try aClient.results()
        #expect(aResults[0] as? Int == 1 && aResults[3] as? Int == 1, "A owned and released the app's name: \(aResults)")
        let pingID = try #require(aResults[6] as? Int, "\(aResults)")
        let aSignals = aResults[7] as? [[Any]] ?? []
        #expect(aSignals.contains { $0.first as? String == "FetchRequested" && $0.last as? Int == pingID }, "A: \(aResults[7])")

        let barrier = try run(nil, [["call", "manager", "TriggerTask", ["\(b.uid)/org.example.Mail", "b-barrier"]]])
        let barrierID = try #require(barrier[0] as? Int, "\(barrier)")
        let bResults = try listener.results()
        #expect(bResults[1] as? Int == 1, "B owned the app's name: \(bResults)")
        let bSignals = try #require(bResults[4] as? [[Any]], "user B's listener: \(bResults)")
        // Positive control: B's listener hears what is sent to B.
        #expect(bSignals.contains { $0.first as? String == "FetchRequested" && $0.last as? Int == barrierID }, "\(bSignals)")
        // And, the barrier in, nothing else: A's fetch never reached B.
        #expect(bSignals.count == 1, "user B saw \(bSignals)")
        #expect(!bSignals.contains { $0.contains { $0 as? String == "ping" } }, "user B saw \(bSignals)")
    }

    @Test func onlyTheServiceMayOwnItsName() throws {
        let results = try run(a, [["own", "org.bgfetch.BackgroundFetch1"]])
        #expect(results.errorName(0) == DBusError.Name.accessDenied)
    }

    @Test func limitsArePerUser() throws {
        let first = try run(a, [
            ["own", "org.example.Sync"],
            ["call", "app", "RegisterTask", ["1", ["stopOnTerminate": false]]],
            ["call", "app", "RegisterTask", ["2", ["stopOnTerminate": false]]],
            ["call", "app", "RegisterTask", ["3", ["stopOnTerminate": false]]],
        ])
        #expect(first.errorName(3) == "org.bgfetch.BackgroundFetch1.Error.LimitExceeded")
        let second = try run(b, [["own", "org.example.Sync"], ["call", "app", "RegisterTask", ["1", ["stopOnTerminate": false]]]])
        #expect(second.errorName(1) == nil)
    }

    @Test func restrictedByTheAdministratorCannotBeSwitchedOnByTheUser() throws {
        let results = try run(a, [
            ["own", "org.example.Tracker"],
            ["call", "app", "GetStatus", []],
            ["call", "app", "RegisterTask", ["t", [:] as [String: Any]]],
            ["call", "manager", "SetAppEnabled", ["org.example.Tracker", true]],
            ["call", "app", "GetStatus", []],
        ])
        #expect(results[1] as? Int == 2)
        #expect(results.errorName(2) == "org.bgfetch.BackgroundFetch1.Error.Restricted")
        #expect(results[4] as? Int == 2)
    }

    @Test func fetchFinishedGoesOnlyToMonitorsAllowedToSeeIt() throws {
        // Monitors of A, of B and of root: on the system bus a manager call
        // makes a monitor. Each runs until the FetchFinished of a barrier
        // task it may see: A's app finishes "m", then B's app finishes
        // "b-barrier", then A's app "a-barrier", each after the one before
        // was answered. The daemon keeps the order of what it sends each
        // monitor, so B's monitor has had every chance to get "m" once it has
        // its barrier, and A's monitor to get "b-barrier" once it has its own.
        func monitor(_ user: TestUsers.User?, _ name: String, until barrier: String) throws -> ScriptedClient {
            try ScriptedClient(name, as: user, bus: bus, [
                ["listen"], ["call", "manager", "ListTasks", []], ["ready"], ["until", "FetchFinished", barrier, 30],
            ])
        }
        let monitors = [
            try monitor(a, "ma", until: "a-barrier"), try monitor(b, "mb", until: "b-barrier"),
            try monitor(nil, "mr", until: "a-barrier"),
        ]
        for monitor in monitors { try monitor.waitUntilReady() }
        func finish(_ user: TestUsers.User, app: String, task: String, result: Int) throws {
            let answered = try run(user, [
                ["own", app], ["call", "app", "RegisterTask", [task, [:] as [String: Any]]],
                ["call", "app", "TriggerFetch", [task]], ["call", "app", "FinishFetch", ["$2", result]],
            ])
            #expect(answered.errorName(1) == nil && answered.errorName(2) == nil && answered.errorName(3) == nil, "\(answered)")
        }
        try finish(a, app: "org.example.Mail", task: "m", result: 2)
        try finish(b, app: "org.example.Sync", task: "b-barrier", result: 1)
        try finish(a, app: "org.example.Mail", task: "a-barrier", result: 1)

        func finished(_ monitor: ScriptedClient) throws -> [[Any]] {
            let results = try monitor.results()
            let signals = try #require(results[3] as? [[Any]], "\(results)")
            return signals.filter { $0.first as? String == "FetchFinished" }
        }
        func tasks(_ signals: [[Any]]) -> [String] { signals.compactMap { $0[2] as? String } }
        let toA = try finished(monitors[0])
        #expect(tasks(toA) == ["m", "a-barrier"], "\(toA)")
        #expect(toA.first?[1] as? String == "org.example.Mail")
        #expect(toA.first?[4] as? Int == 2)
        let toB = try finished(monitors[1])
        #expect(tasks(toB) == ["b-barrier"], "\(toB)")
        #expect(toB.first?[1] as? String == "org.example.Sync")
        let toRoot = try finished(monitors[2])
        #expect(tasks(toRoot) == ["m", "b-barrier", "a-barrier"], "\(toRoot)")
    }
}
