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
        try TestUsers.runClient(as: user, address: bus.address, operations)
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
        // B listens to every signal of the service in the background while A triggers.
        let listener = try ChildProcess(
            "/usr/bin/setpriv",
            ["--reuid=\(b.uid)", "--regid=\(b.gid)", "--clear-groups", "/usr/bin/python3",
             Paths.fixtures.appendingPathComponent("bus_client.py").path, bus.address,
             #"[["own", "org.example.Mail"], ["listen"], ["wait", 4]]"#],
            stdout: bus.directory.appendingPathComponent("b.out").path)
        usleep(1_000_000)
        let aResults = try run(a, [
            ["own", "org.example.Mail"], ["listen"],
            ["call", "app", "RegisterTask", ["ping", [:] as [String: Any]]],
            ["call", "app", "TriggerFetch", ["ping"]], ["wait", 1],
        ])
        let aSignals = try #require(aResults[4] as? [[Any]])
        #expect(aSignals.contains { $0.first as? String == "FetchRequested" })
        #expect(listener.wait(timeout: 20) == 0)
        let bOutput = try String(contentsOf: bus.directory.appendingPathComponent("b.out"), encoding: .utf8)
        let bResults = try #require(try JSONSerialization.jsonObject(with: Data(bOutput.utf8)) as? [Any])
        #expect((bResults[2] as? [Any])?.isEmpty == true, "user B saw \(bResults[2])")
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
        // Monitors of A, of B and of root: on the system bus a manager call makes a monitor.
        func monitor(_ user: TestUsers.User?, _ file: String) throws -> ChildProcess {
            let script = [Paths.fixtures.appendingPathComponent("bus_client.py").path, bus.address,
                          #"[["listen"], ["call", "manager", "ListTasks", []], ["wait", 4]]"#]
            let out = bus.directory.appendingPathComponent(file).path
            guard let user else { return try ChildProcess("/usr/bin/python3", script, stdout: out) }
            return try ChildProcess(
                "/usr/bin/setpriv", ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "/usr/bin/python3"] + script,
                stdout: out)
        }
        let monitors = [try monitor(a, "ma.out"), try monitor(b, "mb.out"), try monitor(nil, "mr.out")]
        usleep(1_500_000)
        let answered = try run(a, [
            ["own", "org.example.Mail"], ["listen"], ["call", "app", "RegisterTask", ["m", [:] as [String: Any]]],
            ["call", "app", "TriggerFetch", ["m"]], ["wait", 0.3], ["call", "app", "FinishFetch", ["$3", 2]],
        ])
        #expect(answered.errorName(5) == nil, "\(answered)")
        for process in monitors { #expect(process.wait(timeout: 20) == 0) }
        func finished(_ file: String) throws -> [[Any]] {
            let text = try String(contentsOf: bus.directory.appendingPathComponent(file), encoding: .utf8)
            let results = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any])
            return ((results[2] as? [[Any]]) ?? []).filter { $0.first as? String == "FetchFinished" }
        }
        let toA = try finished("ma.out")
        #expect(toA.count == 1)
        #expect(toA.first?[1] as? String == "org.example.Mail")
        #expect(toA.first?[4] as? Int == 2)
        #expect(try finished("mr.out").count == 1)
        #expect(try finished("mb.out").isEmpty)
    }
}
