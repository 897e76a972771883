import DBus
import Foundation
import TestKit
import Testing

/// The built `bgfetchctl`, run against a real daemon on a private bus (its
/// session bus through `DBUS_SESSION_BUS_ADDRESS`).
@Suite(.timeLimit(.minutes(2)))
struct BgfetchctlTests {
    private static let taskKeys: Set<String> = [
        "app", "uid", "task", "minimumInterval", "effectiveInterval", "stopOnTerminate", "startOnBoot", "state", "nextFetch",
        "lastFetch", "lastResult", "lastResultName", "fetchCount", "failureCount", "reason", "requiresNetwork",
        "requiresUnmeteredNetwork", "requiresExternalPower", "requiresBatteryNotLow", "adaptive", "launch",
        "consecutiveFailures", "consecutiveNoData",
    ]

    private func ctl(_ environment: [String: String], _ arguments: String...) throws -> CommandResult {
        try Command.run(Paths.bgfetchctl, arguments, environment: environment)
    }

    private func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    private func status(_ client: ServiceClient) throws -> UInt32? { try client.call("GetStatus").first?.uint32Value }

    // MARK: Help and usage

    @Test func helpListsSubcommandsFlagsAndExitCodes() throws {
        let help = try ctl([:], "--help")
        #expect(help.status == 0)
        for word in ["status", "list", "trigger", "enable", "disable", "history", "monitor", "Exit status"] {
            #expect(help.stdout.contains(word), "\(word) missing from --help")
        }
        #expect(help.stdout.contains("3  the service is not running"))
        #expect(help.stdout.contains("5  access denied"))
        let list = try ctl([:], "list", "--help")
        #expect(list.status == 0)
        for flag in ["--user", "--system", "--address <address>", "--all", "--json"] {
            #expect(list.stdout.contains(flag), "\(flag) missing from list --help")
        }
        #expect(try ctl([:], "monitor", "--help").stdout.contains("--count <n>"))
    }

    @Test func usageErrorsExitWith2() throws {
        let unknown = try ctl([:], "bogus")
        #expect(unknown.status == 2 && unknown.stderr.contains("Unexpected argument 'bogus'"))
        let missing = try ctl([:], "trigger", "org.example.Mail")
        #expect(missing.status == 2 && missing.stderr.contains("Missing expected argument '<task>'"))
        let both = try ctl([:], "list", "--user", "--system")
        #expect(both.status == 2 && both.stderr.contains("exclude each other"))
        let count = try ctl([:], "monitor", "--count", "0")
        #expect(count.status == 2 && count.stderr.contains("--count must be at least 1"))
    }

    // MARK: No service

    @Test func serviceNotRunningExitsWith3() throws {
        let bus = try TestBus()
        let message = "bgfetchctl: the bgfetch service is not running on the session bus\n"
        for arguments in [["status"], ["list"], ["trigger", "a", "b"], ["history", "a", "b"], ["enable", "a"], ["status", "a"]] {
            let result = try Command.run(Paths.bgfetchctl, arguments, environment: bus.environment)
            #expect(result.status == 3, "\(arguments): \(result)")
            #expect(result.stderr == message, "\(arguments)")
        }
        let status = try ctl(bus.environment, "status", "--json")
        #expect(status.status == 3)
        let object = try #require(try json(status.stdout) as? [String: Any])
        #expect(object["running"] as? Bool == false && object["bus"] as? String == "session")

        let unreachable = try ctl([:], "list", "--address", "unix:path=\(bus.directory.path)/no-such-socket")
        #expect(unreachable.status == 3)
        #expect(unreachable.stderr.hasPrefix("bgfetchctl: cannot connect to the bus at unix:path="))
    }

    // MARK: status

    @Test func statusShowsTheService() throws {
        let f = try Fixture(["--minimum-interval-floor", "1", "--fetch-timeout", "7"])
        let text = try ctl(f.bus.environment, "status")
        #expect(text.status == 0)
        #expect(text.stdout.contains("bgfetch service on the session bus: running"))
        #expect(text.stdout.contains("Fetch timeout:     7s"))
        #expect(text.stdout.contains("Default interval:  10m"))
        #expect(text.stdout.contains("Interval floor:    1s"))

        let result = try ctl(f.bus.environment, "status", "--json")
        #expect(result.status == 0)
        let object = try #require(try json(result.stdout) as? [String: Any])
        #expect(Set(object.keys) == ["bus", "running", "version", "owner", "fetchTimeout", "defaultMinimumInterval", "minimumIntervalFloor"])
        #expect(object["running"] as? Bool == true)
        #expect(object["fetchTimeout"] as? Int == 7)
        #expect(object["minimumIntervalFloor"] as? Int == 1)
        #expect(object["defaultMinimumInterval"] as? Int == 600)
        #expect((object["version"] as? String)?.isEmpty == false)
        #expect((object["owner"] as? String)?.hasPrefix(":") == true)
    }

    /// The bus options and --json work before the subcommand too, as with systemctl.
    @Test func globalOptionsGoBeforeOrAfterTheSubcommand() throws {
        let f = try Fixture()
        try f.client.register("inbox", .options(interval: 120))
        let after = try ctl([:], "list", "--json", "--address", f.bus.address)
        let before = try ctl([:], "--address", f.bus.address, "--json", "list")
        let mixed = try ctl([:], "--json", "list", "--address=\(f.bus.address)")
        for result in [after, before, mixed] {
            #expect(result.status == 0, "\(result)")
            let tasks = try #require(try json(result.stdout) as? [[String: Any]], "\(result.stdout)")
            #expect(tasks.map { $0["task"] as? String } == ["inbox"])
        }
        // Still one bus: two of them before and after the subcommand are refused.
        let both = try ctl([:], "--system", "list", "--address", f.bus.address)
        #expect(both.status == 2 && both.stderr.contains("exclude each other"))
    }

    @Test func statusOfAnApp() throws {
        let f = try Fixture()
        try f.client.register("inbox", .options(interval: 120))
        let text = try ctl(f.bus.environment, "status", Fixture.appID)
        #expect(text.status == 0)
        #expect(text.stdout.contains("\(Fixture.appID) (uid \(getuid())): Available"))
        #expect(text.stdout.contains("inbox"))

        let result = try ctl(f.bus.environment, "status", Fixture.appID, "--json")
        let object = try #require(try json(result.stdout) as? [String: Any])
        #expect(object["available"] as? Bool == true && object["app"] as? String == Fixture.appID)
        let tasks = try #require(object["tasks"] as? [[String: Any]])
        #expect(tasks.map { $0["task"] as? String } == ["inbox"])

        try f.client.call("SetAppEnabled", [.string(Fixture.appID), .bool(false)], interface: ServiceClient.manager)
        let paused = try ctl(f.bus.environment, "status", Fixture.appID)
        #expect(paused.status == 0 && paused.stdout.contains("\(Fixture.appID) (uid \(getuid())): Denied"), "\(paused)")

        let unknown = try ctl(f.bus.environment, "status", "org.example.Nope")
        #expect(unknown.status == 4)
        #expect(unknown.stderr == "bgfetchctl: no such app: 'org.example.Nope' has no registered task\n")
    }

    /// Denied (the user's switch) and Restricted (the administrator) are told apart.
    @Test func statusTellsDeniedFromRestricted() throws {
        let f = try Fixture(configFile: "[Apps]\nRestricted=org.example.Tracker\n")
        let tracker = try f.app("org.example.Tracker")
        defer { tracker.close() }
        // A restricted app cannot register; the administrator's list still names it, so its tasks
        // are none, and status says it has none. A denied one keeps its tasks paused.
        #expect(tracker.error("RegisterTask", [.string("t"), .vardict([:])])?.name == "org.bgfetch.BackgroundFetch1.Error.Restricted")
        try f.client.register("inbox", .options(interval: 120))
        try f.client.call("SetAppEnabled", [.string(Fixture.appID), .bool(false)], interface: ServiceClient.manager)
        let denied = try ctl(f.bus.environment, "status", Fixture.appID, "--json")
        let object = try #require(try json(denied.stdout) as? [String: Any])
        #expect(object["statusName"] as? String == "Denied" && object["status"] as? Int == 1)
        let apps = try ctl(f.bus.environment, "apps", "--json")
        let list = try #require(try json(apps.stdout) as? [[String: Any]], "\(apps)")
        #expect(list.map { $0["app"] as? String } == [Fixture.appID])
        #expect(list.first?["statusName"] as? String == "Denied" && list.first?["taskCount"] as? Int == 1)
        #expect(list.first?["enabled"] as? Bool == false && list.first?["restricted"] as? Bool == false)
        // A stored switch makes an app without tasks known; the restriction still wins over it.
        try f.client.call("SetAppEnabled", [.string("org.example.Tracker"), .bool(false)], interface: ServiceClient.manager)
        let table = try ctl(f.bus.environment, "apps")
        #expect(table.status == 0 && table.stdout.contains("org.example.Tracker") && table.stdout.contains("Restricted"), "\(table)")
        #expect(table.stdout.contains("2 apps listed."))
    }

    /// Disabling an app with no tasks stores the switch, and says so.
    @Test func disablingAnAppWithoutTasksSaysSo() throws {
        let f = try Fixture()
        let result = try ctl(f.bus.environment, "disable", "org.example.Later")
        #expect(result.status == 0)
        #expect(result.stdout.contains("org.example.Later has no registered task; the switch is stored"), "\(result)")
        let status = try f.client.call("GetAppStatus", [.string("org.example.Later")], interface: ServiceClient.manager)
        #expect(status.first?.uint32Value == 1)
        try f.client.register("inbox", .options(interval: 120))
        let withTasks = try ctl(f.bus.environment, "disable", Fixture.appID)
        #expect(withTasks.status == 0 && !withTasks.stdout.contains("no registered task"))
    }

    // MARK: list

    @Test func listPrintsATableAndJSON() throws {
        let f = try Fixture()
        try f.client.register("inbox", .options(interval: 120))
        let feeds = try f.app("org.example.Feeds")
        defer { feeds.close() }
        try feeds.register("news", .options(stopOnTerminate: false))

        let text = try ctl(f.bus.environment, "list")
        #expect(text.status == 0)
        let lines = text.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first).split(separator: " ").map(String.init)
        #expect(header == ["APP", "TASK", "INTERVAL", "NEXT", "LAST", "RESULT", "STATE", "REASON"])
        let inbox = try #require(lines.first { $0.hasPrefix(Fixture.appID) })
        #expect(inbox.contains("inbox") && inbox.contains(" 2m ") && inbox.contains("(in ") && inbox.hasSuffix("scheduled  interval"))
        #expect(lines.contains { $0.hasPrefix("org.example.Feeds") && $0.contains("news") && $0.contains("10m") })
        #expect(text.stdout.contains("2 tasks listed."))

        let result = try ctl(f.bus.environment, "list", "--json")
        #expect(result.status == 0)
        let tasks = try #require(try json(result.stdout) as? [[String: Any]])
        #expect(tasks.count == 2)
        for task in tasks { #expect(Set(task.keys) == Self.taskKeys) }
        let first = try #require(tasks.first { $0["task"] as? String == "inbox" })
        #expect(first["app"] as? String == Fixture.appID)
        #expect(first["uid"] as? Int == Int(getuid()))
        #expect(first["minimumInterval"] as? Int == 120 && first["effectiveInterval"] as? Int == 120)
        #expect(first["state"] as? String == "scheduled")
        #expect(first["stopOnTerminate"] as? Bool == true && first["startOnBoot"] as? Bool == false)
        #expect((first["nextFetch"] as? Int ?? 0) > Int(Date().timeIntervalSince1970 * 1_000_000))
        #expect(first["lastFetch"] as? Int == 0 && first["lastResult"] as? Int == 0 && first["lastResultName"] is NSNull)
        let news = try #require(tasks.first { $0["task"] as? String == "news" })
        #expect(news["app"] as? String == "org.example.Feeds" && news["stopOnTerminate"] as? Bool == false)
        #expect(news["minimumInterval"] as? Int == 600)

        let all = try ctl(f.bus.environment, "list", "--all")
        #expect(all.status == 0 && all.stdout.hasPrefix("UID  APP"))
    }

    /// `status APP TASK` says in one paragraph when the task fires next and
    /// why, naming the unmet condition and the service it comes from; the
    /// REASON column and `--json` carry the same.
    @Test func statusOfATaskExplainsWhyItWaits() async throws {
        let system = try MockSystemBus()
        try await system.startOfflineNetworkManager()
        let bus = try TestBus()
        let daemon = try system.daemon(serving: bus)
        defer { withExtendedLifetime(daemon) {} }
        let app = try ServiceClient(bus: bus, ownName: Fixture.appID)
        defer { app.close() }
        try app.register("sync", ["minimumInterval": .uint32(1), "requiresNetwork": .bool(true)])
        try app.register("later", .options(interval: 3600))
        try await eventually("sync waiting") { try app.tasks()["sync"]?["state"]?.stringValue == "waiting" ? true : nil }

        let text = try ctl(bus.environment, "status", Fixture.appID, "sync")
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("requires the network") && text.stdout.contains("NetworkManager"), "\(text.stdout)")
        #expect(text.stdout.split(separator: "\n").count == 1, "one paragraph")
        let later = try ctl(bus.environment, "status", Fixture.appID, "later")
        #expect(later.stdout.contains("is scheduled") && later.stdout.contains("1h"), "\(later.stdout)")
        let object = try #require(try json(try ctl(bus.environment, "status", Fixture.appID, "sync", "--json").stdout) as? [String: Any])
        #expect(object["reason"] as? String == "network" && object["state"] as? String == "waiting")
        #expect((object["explanation"] as? String)?.contains("NetworkManager") == true)
        let missing = try ctl(bus.environment, "status", Fixture.appID, "nope")
        #expect(missing.status == 4 && missing.stderr.contains("no task 'nope'"), "\(missing)")

        let table = try ctl(bus.environment, "list")
        let row = try #require(table.stdout.split(separator: "\n").first { $0.contains(" sync ") })
        #expect(row.split(separator: " ").suffix(2) == ["waiting", "network"], "\(row)")
    }

    @Test func listWithNoTasks() throws {
        let f = try Fixture()
        let text = try ctl(f.bus.environment, "list")
        #expect(text.status == 0 && text.stdout.hasPrefix("No tasks."))
        let result = try ctl(f.bus.environment, "list", "--json")
        #expect(try json(result.stdout) as? [Any] != nil)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
    }

    // MARK: trigger and history

    @Test func triggerPrintsTheRequestIDAndHistoryShowsTheAnswer() async throws {
        let f = try Fixture()
        try f.client.register("inbox")
        let trigger = try ctl(f.bus.environment, "trigger", Fixture.appID, "inbox")
        #expect(trigger.status == 0)
        let id = try #require(UInt64(trigger.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        // The app got the fetch, and answers it.
        let requested = try await eventually("FetchRequested") { f.client.signals("FetchRequested").first }
        #expect(requested.arguments == [.string("inbox"), .uint64(id)])
        try f.client.call("FinishFetch", [.uint64(id), .uint32(2)])

        let text = try ctl(f.bus.environment, "history", Fixture.appID, "inbox")
        #expect(text.status == 0)
        let lines = text.stdout.split(separator: "\n")
        #expect(lines.first?.split(separator: " ") == ["REQUESTED", "FINISHED", "TOOK", "RESULT"])
        #expect(lines.count == 2 && lines.last?.hasSuffix("NewData") == true)

        let result = try ctl(f.bus.environment, "history", Fixture.appID, "inbox", "--json")
        let rows = try #require(try json(result.stdout) as? [[String: Any]])
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(Set(row.keys) == ["requestedAt", "finishedAt", "result", "resultName", "expired"])
        #expect(row["result"] as? Int == 2 && row["resultName"] as? String == "NewData" && row["expired"] as? Bool == false)
        let requestedAt = try #require(row["requestedAt"] as? Int)
        #expect(requestedAt > 0 && (row["finishedAt"] as? Int ?? 0) >= requestedAt)
    }

    @Test func noSuchTaskAndInvalidNames() throws {
        let f = try Fixture()
        try f.client.register("inbox")
        let trigger = try ctl(f.bus.environment, "trigger", Fixture.appID, "nope")
        #expect(trigger.status == 4)
        #expect(trigger.stderr == "bgfetchctl: no such task 'nope' for app '\(Fixture.appID)'\n")
        let history = try ctl(f.bus.environment, "history", "org.example.Other", "inbox")
        #expect(history.status == 4 && history.stderr.contains("no such task 'inbox' for app 'org.example.Other'"))
        let invalid = try ctl(f.bus.environment, "trigger", "bad app!", "inbox")
        #expect(invalid.status == 2 && invalid.stderr.hasPrefix("bgfetchctl: invalid argument:"))
    }

    // MARK: enable and disable

    @Test func enableAndDisable() throws {
        let f = try Fixture()
        try f.client.register("inbox")
        let off = try ctl(f.bus.environment, "disable", Fixture.appID)
        #expect(off.status == 0 && off.stdout == "Background fetch disabled for \(Fixture.appID).\n")
        #expect(try status(f.client) == 1)
        let denied = try ctl(f.bus.environment, "trigger", Fixture.appID, "inbox")
        #expect(denied.status == 5 && denied.stderr.hasPrefix("bgfetchctl: denied:"))
        #expect(try ctl(f.bus.environment, "enable", Fixture.appID).status == 0)
        #expect(try status(f.client) == 3)

        let allOff = try ctl(f.bus.environment, "disable", "*")
        #expect(allOff.status == 0 && allOff.stdout.contains("every app"))
        #expect(try status(f.client) == 1)
        #expect(try ctl(f.bus.environment, "enable", "*").status == 0)
        #expect(try status(f.client) == 3)
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func anotherUsersAppIsAccessDenied() throws {
        let bus = try TestBus(config: "multiuser-bus.conf")
        let daemon = try DaemonProcess(bus: bus, arguments: ["--minimum-interval-floor", "1"])
        try daemon.start()
        let client = try ServiceClient(bus: bus, ownName: Fixture.appID)
        defer { client.close() }
        try client.register("inbox")
        let user = try TestUsers.user(TestUsers.names[0])
        let asUser = ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", Paths.bgfetchctl]
        let trigger = try Command.run(
            "/usr/bin/setpriv", asUser + ["trigger", "\(getuid())/\(Fixture.appID)", "inbox"], environment: bus.environment)
        #expect(trigger.status == 5, "\(trigger)")
        #expect(trigger.stderr.hasPrefix("bgfetchctl: access denied:"))
        // That user sees none of root's tasks.
        let list = try Command.run("/usr/bin/setpriv", asUser + ["list", "--json"], environment: bus.environment)
        #expect(list.status == 0 && list.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
    }

    // MARK: monitor

    @Test func monitorPrintsFinishedFetches() async throws {
        let f = try Fixture()
        try f.client.register("inbox")
        let monitor = try BackgroundProcess(Paths.bgfetchctl, ["monitor", "--count", "2", "--json"], environment: f.bus.environment)
        try await monitor.waitForOutput("Monitoring finished fetches on the session bus")
        var ids: [UInt64] = []
        for result: UInt32 in [2, 1] {
            let id = try #require(try f.client.call("TriggerFetch", [.string("inbox")]).first?.uint64Value)
            try f.client.call("FinishFetch", [.uint64(id), .uint32(result)])
            ids.append(id)
        }
        #expect(try await monitor.waitForExit() == 0)
        let lines = try monitor.stdout.split(separator: "\n").map { try #require(try json(String($0)) as? [String: Any]) }
        #expect(lines.count == 2)
        for (line, (id, name)) in zip(lines, zip(ids, ["NewData", "NoData"])) {
            #expect(Set(line.keys) == ["time", "app", "task", "requestId", "result", "resultName"])
            #expect(line["app"] as? String == Fixture.appID && line["task"] as? String == "inbox")
            #expect(line["requestId"] as? Int == Int(id) && line["resultName"] as? String == name)
        }
    }

    @Test func monitorPrintsLinesForPeopleAndStopsOnSIGINT() async throws {
        let f = try Fixture()
        try f.client.register("inbox")
        let monitor = try BackgroundProcess(Paths.bgfetchctl, ["monitor"], environment: f.bus.environment)
        try await monitor.waitForOutput("Monitoring")
        let id = try #require(try f.client.call("TriggerFetch", [.string("inbox")]).first?.uint64Value)
        try f.client.call("FinishFetch", [.uint64(id), .uint32(3)])
        try await eventually("a line") { monitor.stdout.isEmpty ? nil : true }
        #expect(monitor.stdout.contains("  \(Fixture.appID)  inbox  request \(id)  Failed\n"))
        monitor.send(SIGINT)
        #expect(try await monitor.waitForExit() == 0)
    }
}
