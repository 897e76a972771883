import DBus
import Foundation
import TestKit
import Glibc
import Testing

/// The service driven with the tools users already have: busctl, gdbus,
/// dbus-send and dbus-python. Each runs with the test bus as its session bus.
///
/// An app is its lowest owned well-known name, else its executable's file
/// name: busctl's calls come from app `busctl`, gdbus's from `gdbus`,
/// dbus-send's from `dbus-send`. They leave the bus after each call, so a task
/// registered with the default `stopOnTerminate` true goes with them.
@Suite(.timeLimit(.minutes(2)))
struct ToolTests {
    static let name = ServiceClient.name, path = ServiceClient.path
    static let app = ServiceClient.app, manager = ServiceClient.manager

    /// `busctl --user call NAME PATH INTERFACE MEMBER ARGS...`
    static func busctl(_ f: Fixture, _ interface: String, _ member: String, _ arguments: String...) throws -> CommandResult {
        try f.run("busctl", ["--user", "call", name, path, interface, member] + arguments)
    }

    /// `gdbus call --session -d NAME -o PATH -m INTERFACE.MEMBER ARGS...`
    static func gdbus(_ f: Fixture, _ interface: String, _ member: String, _ arguments: String...) throws -> CommandResult {
        try f.run("gdbus", ["call", "--session", "-d", name, "-o", path, "-m", "\(interface).\(member)"] + arguments)
    }

    // MARK: busctl

    @Test func busctlTaskWithStopOnTerminateGoesWhenBusctlLeaves() throws {
        let f = try Fixture()
        let register = try Self.busctl(f, Self.app, "RegisterTask", "sa{sv}", "refresh", "0")
        #expect(register.status == 0, "\(register)")
        let keep = try Self.busctl(f, Self.app, "RegisterTask", "sa{sv}", "kept", "1", "stopOnTerminate", "b", "false")
        #expect(keep.status == 0, "\(keep)")
        // That busctl has left the bus: its stopOnTerminate task went with it.
        try waitUntilBusctlTaskIsGone(f, "refresh")
        let check = try Self.busctl(f, Self.app, "IsTaskRegistered", "s", "refresh")
        #expect(check.status == 0, "\(check)")
        #expect(busctlTokens(check.stdout) == ["b", "false"])
        // The one registered with stopOnTerminate false stays.
        let kept = try Self.busctl(f, Self.app, "IsTaskRegistered", "s", "kept")
        #expect(busctlTokens(kept.stdout) == ["b", "true"], "\(kept)")
    }

    @Test func busctlRegistersListsTriggersAndUnregisters() throws {
        let f = try Fixture()
        let register = try Self.busctl(
            f, Self.app, "RegisterTask", "sa{sv}", "refresh", "2", "minimumInterval", "u", "900", "stopOnTerminate", "b", "false")
        try #require(register.status == 0, "\(register)")
        #expect(register.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)

        // A second busctl (a new connection, the same app) still sees it.
        let check = try Self.busctl(f, Self.app, "IsTaskRegistered", "s", "refresh")
        #expect(busctlTokens(check.stdout) == ["b", "true"], "\(check)")

        let tasks = try Self.busctl(f, Self.app, "GetRegisteredTasks")
        try #require(tasks.status == 0, "\(tasks)")
        let taskTokens = busctlTokens(tasks.stdout)
        #expect(Array(taskTokens.prefix(3)) == ["a(sa{sv})", "1", "refresh"], "\(tasks.stdout)")
        #expect(taskTokens.containsSequence(["minimumInterval", "u", "900"]), "\(tasks.stdout)")
        #expect(taskTokens.containsSequence(["effectiveInterval", "u", "900"]), "\(tasks.stdout)")
        #expect(taskTokens.containsSequence(["stopOnTerminate", "b", "false"]), "\(tasks.stdout)")
        #expect(taskTokens.containsSequence(["state", "s", "scheduled"]), "\(tasks.stdout)")

        // The same with busctl's JSON output, parsed fully.
        let json = try f.run("busctl", ["--user", "--json=short", "call", Self.name, Self.path, Self.app, "GetRegisteredTasks"])
        try #require(json.status == 0, "\(json)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "a(sa{sv})")
        let entries = try #require((object["data"] as? [Any])?.first as? [[Any]])
        #expect(entries.count == 1)
        #expect(entries.first?.first as? String == "refresh")
        let info = try #require(entries.first?.last as? [String: [String: Any]])
        #expect(info["minimumInterval"]?["data"] as? Int == 900)
        #expect(info["stopOnTerminate"]?["data"] as? Bool == false)
        #expect(info["nextFetch"]?["type"] as? String == "t")

        // The manager's view: app "busctl", with the uid.
        let list = try Self.busctl(f, Self.manager, "ListTasks")
        try #require(list.status == 0, "\(list)")
        let listTokens = busctlTokens(list.stdout)
        #expect(Array(listTokens.prefix(4)) == ["a(ssa{sv})", "1", "busctl", "refresh"], "\(list.stdout)")
        #expect(listTokens.containsSequence(["uid", "u", "\(getuid())"]), "\(list.stdout)")

        // Fire it from the manager: a request id.
        let trigger = try Self.busctl(f, Self.manager, "TriggerTask", "ss", "busctl", "refresh")
        try #require(trigger.status == 0, "\(trigger)")
        let triggerTokens = busctlTokens(trigger.stdout)
        #expect(triggerTokens.count == 2 && triggerTokens.first == "t", "\(trigger.stdout)")
        let requestID = try #require(triggerTokens.last.flatMap { UInt64($0) }, "\(trigger.stdout)")
        #expect(requestID > 0)

        // The history has the row: requested now, outstanding (no busctl is
        // on the bus to answer it).
        let history = try Self.busctl(f, Self.manager, "GetHistory", "ss", "busctl", "refresh")
        try #require(history.status == 0, "\(history)")
        let historyTokens = busctlTokens(history.stdout)
        #expect(Array(historyTokens.prefix(2)) == ["a(ttu)", "1"], "\(history.stdout)")
        let requestedAt = try #require(historyTokens.count == 5 ? UInt64(historyTokens[2]) : nil, "\(history.stdout)")
        let now = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        #expect(requestedAt <= now && requestedAt > now - 60_000_000, "requested at \(requestedAt), now \(now)")
        #expect(Array(historyTokens.suffix(2)) == ["0", "0"], "\(history.stdout)")

        let unregister = try Self.busctl(f, Self.app, "UnregisterTask", "s", "refresh")
        #expect(unregister.status == 0, "\(unregister)")
        #expect(busctlTokens(try Self.busctl(f, Self.app, "IsTaskRegistered", "s", "refresh").stdout) == ["b", "false"])
        let again = try Self.busctl(f, Self.app, "UnregisterTask", "s", "refresh")
        #expect(again.status != 0)
        #expect(again.stderr.contains("refresh") && again.stderr.contains("busctl"), "\(again)")
    }

    @Test func busctlShowsTheServicesErrors() throws {
        let f = try Fixture()
        let bad = try Self.busctl(f, Self.app, "RegisterTask", "sa{sv}", "bad name!", "0")
        #expect(bad.status != 0, "\(bad)")
        #expect(bad.stderr.contains("bad name!"), "the message does not name the task: \(bad)")
        #expect(bad.stderr.contains("A-Z a-z 0-9 _ . - :"), "the message does not say what is allowed: \(bad)")
        let interval = try Self.busctl(f, Self.app, "RegisterTask", "sa{sv}", "ok", "1", "minimumInterval", "u", "604801")
        #expect(interval.status != 0, "\(interval)")
        #expect(interval.stderr.contains("604801"), "\(interval)")
        #expect(busctlTokens(try Self.busctl(f, Self.app, "IsTaskRegistered", "s", "ok").stdout) == ["b", "false"])
    }

    @Test func busctlReadsProperties() throws {
        let f = try Fixture(["--minimum-interval-floor", "45", "--fetch-timeout", "17"])
        let timeout = try f.run("busctl", ["--user", "get-property", Self.name, Self.path, Self.app, "FetchTimeout"])
        #expect(timeout.status == 0, "\(timeout)")
        #expect(busctlTokens(timeout.stdout) == ["u", "17"], "\(timeout)")
        let floor = try f.run("busctl", ["--user", "get-property", Self.name, Self.path, Self.app, "MinimumIntervalFloor"])
        #expect(busctlTokens(floor.stdout) == ["u", "45"], "\(floor)")
        let version = try f.run("busctl", ["--user", "get-property", Self.name, Self.path, Self.app, "Version"])
        let versionTokens = busctlTokens(version.stdout)
        #expect(versionTokens.count == 2 && versionTokens[0] == "s" && !versionTokens[1].isEmpty, "\(version)")
    }

    // MARK: gdbus

    @Test func gdbusRegistersAndReadsStatus() throws {
        let f = try Fixture()
        let register = try Self.gdbus(
            f, Self.app, "RegisterTask", "refresh", "{'minimumInterval': <uint32 900>, 'stopOnTerminate': <false>}")
        try #require(register.status == 0, "\(register)")
        #expect(register.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "()")

        let tasks = try Self.gdbus(f, Self.app, "GetRegisteredTasks")
        try #require(tasks.status == 0, "\(tasks)")
        let compact = tasks.stdout.filter { !$0.isWhitespace }
        #expect(compact.hasPrefix("([('refresh',{"), "\(tasks.stdout)")
        #expect(compact.contains("'minimumInterval':<uint32900>"), "\(tasks.stdout)")
        #expect(compact.contains("'stopOnTerminate':<false>"), "\(tasks.stdout)")

        let status = try Self.gdbus(f, Self.app, "GetStatus")
        #expect(status.status == 0, "\(status)")
        #expect(status.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "(uint32 3,)", "\(status)")

        // The task belongs to app "gdbus".
        let list = try f.client.call("ListTasks", interface: ServiceClient.manager).first?.arrayValue ?? []
        let owners = list.compactMap { $0.structValue }.map { "\($0[0].stringValue ?? "?")/\($0[1].stringValue ?? "?")" }
        #expect(owners == ["gdbus/refresh"])
    }

    @Test func gdbusShowsInvalidArgs() throws {
        let f = try Fixture()
        let zero = try Self.gdbus(f, Self.app, "RegisterTask", "refresh", "{'minimumInterval': <uint32 0>}")
        #expect(zero.status != 0)
        #expect(zero.stderr.contains("org.freedesktop.DBus.Error.InvalidArgs"), "\(zero)")
        #expect(zero.stderr.contains("minimumInterval"), "\(zero)")
        // A plain <900> is an int32, not the uint32 the option needs.
        let wrongType = try Self.gdbus(f, Self.app, "RegisterTask", "refresh", "{'minimumInterval': <900>}")
        #expect(wrongType.status != 0)
        #expect(wrongType.stderr.contains("org.freedesktop.DBus.Error.InvalidArgs"), "\(wrongType)")
        #expect(wrongType.stderr.contains("minimumInterval"), "\(wrongType)")
        let unknown = try Self.gdbus(f, Self.app, "RegisterTask", "refresh", "{'colour': <'red'>}")
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("org.freedesktop.DBus.Error.InvalidArgs"), "\(unknown)")
        #expect(unknown.stderr.contains("colour"), "\(unknown)")
        let onBoot = try Self.gdbus(f, Self.app, "RegisterTask", "refresh", "{'startOnBoot': <true>}")
        #expect(onBoot.status != 0)
        #expect(onBoot.stderr.contains("org.freedesktop.DBus.Error.InvalidArgs"), "\(onBoot)")
        #expect(onBoot.stderr.contains("stopOnTerminate"), "\(onBoot)")
        // Nothing was registered by any of them.
        #expect(try f.client.call("ListTasks", interface: ServiceClient.manager).first?.arrayValue?.isEmpty == true)
    }

    // MARK: dbus-send

    @Test func dbusSendCallsTheService() throws {
        let f = try Fixture()
        let status = try f.run("dbus-send", ["--session", "--print-reply", "--dest=\(Self.name)", Self.path, "\(Self.app).GetStatus"])
        #expect(status.status == 0, "\(status)")
        #expect(status.stdout.hasPrefix("method return"), "\(status)")
        let value = status.stdout.split(whereSeparator: \.isNewline).last.map { $0.split(separator: " ").map(String.init) }
        #expect(value == ["uint32", "3"], "\(status)")

        let missing = try f.run(
            "dbus-send", ["--session", "--print-reply", "--dest=\(Self.name)", Self.path, "\(Self.app).UnregisterTask", "string:nothing"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("org.bgfetch.BackgroundFetch1.Error.NoSuchTask"), "\(missing)")
        #expect(missing.stderr.contains("'dbus-send'") && missing.stderr.contains("nothing"), "\(missing)")

        let version = try f.run(
            "dbus-send",
            ["--session", "--print-reply", "--dest=\(Self.name)", Self.path, "org.freedesktop.DBus.Properties.Get", "string:\(Self.app)", "string:Version"])
        #expect(version.status == 0, "\(version)")
        let words = version.stdout.split(whereSeparator: \.isNewline).last?.split(separator: " ").map(String.init) ?? []
        #expect(Array(words.prefix(2)) == ["variant", "string"], "\(version)")
    }

    // MARK: dbus-python

    @Test func pythonAppAnswersAFetch() async throws {
        let f = try Fixture()
        let directory = Paths.temporaryDirectory("pyapp")
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("app.py")
        try Self.pythonApp.write(to: script, atomically: true, encoding: .utf8)
        let result = try f.run("/usr/bin/python3", [script.path])
        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(whereSeparator: \.isNewline)
        #expect(lines.last?.hasPrefix("OK") == true, "\(result)")

        // Its FinishFetch was broadcast to monitors as FetchFinished.
        let finished = try f.client.waitForSignal("FetchFinished")
        #expect(finished.arguments.count == 4)
        #expect(finished.arguments.first == .string("org.example.PyFeeds"))
        #expect(finished.arguments.dropFirst().first == .string("sync"))
        #expect(finished.arguments.last == .uint32(2))
        if let id = finished.arguments.dropFirst(2).first?.uint64Value {
            #expect(lines.last == "OK request \(id)", "\(result)")
        }
        // The script registered with stopOnTerminate left at its default, so the
        // task went away with the script.
        try await eventually("the python app's task to go") {
            let tasks = try f.client.call("ListTasks", interface: ServiceClient.manager).first?.arrayValue ?? []
            return tasks.contains { $0.structValue?.first == .string("org.example.PyFeeds") } ? nil : true
        }
    }

    /// An app in dbus-python: requests a name (its app id), registers a task,
    /// listens for FetchRequested with a GLib main loop, triggers a fetch,
    /// answers it with NewData (2) and checks the manager's history.
    static let pythonApp = #"""
        import sys
        import dbus
        import dbus.mainloop.glib
        from gi.repository import GLib

        NAME = "org.bgfetch.BackgroundFetch1"
        PATH = "/org/bgfetch/BackgroundFetch1"
        MANAGER = NAME + ".Manager"
        APP_ID = "org.example.PyFeeds"

        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        bus = dbus.SessionBus()
        # The lowest well-known name the connection owns is its app id.
        bus.request_name(APP_ID, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
        service = bus.get_object(NAME, PATH)
        app = dbus.Interface(service, NAME)
        manager = dbus.Interface(service, MANAGER)

        app.RegisterTask("sync", {"minimumInterval": dbus.UInt32(900)})
        loop = GLib.MainLoop()
        state = {"requested": None, "error": None}

        def on_fetch_requested(name, request_id):
            if name != "sync":
                return
            state["requested"] = int(request_id)
            try:
                app.FinishFetch(request_id, dbus.UInt32(2))  # 2 = NewData
            except dbus.DBusException as error:
                state["error"] = str(error)
            loop.quit()

        app.connect_to_signal("FetchRequested", on_fetch_requested)
        triggered = int(app.TriggerFetch("sync"))

        def give_up():
            state["error"] = "no FetchRequested within 60 s"
            loop.quit()
            return False

        GLib.timeout_add_seconds(60, give_up)
        loop.run()

        if state["error"]:
            print("FAIL:", state["error"])
            sys.exit(1)
        if state["requested"] != triggered:
            print("FAIL: FetchRequested for request", state["requested"], "but TriggerFetch returned", triggered)
            sys.exit(1)
        history = manager.GetHistory(APP_ID, "sync")
        rows = [(int(r), int(f), int(res)) for (r, f, res) in history]
        print("history:", rows)
        if not rows or rows[-1][2] != 2 or rows[-1][1] == 0:
            print("FAIL: the last fetch in the history is not a finished NewData:", rows)
            sys.exit(1)
        print("OK request", triggered)
        """#

    // MARK: unicast

    @Test func fetchRequestedReachesOnlyTheOwningApp() throws {
        let f = try Fixture()
        // Both clients have a match rule for every signal from the service.
        let other = try f.app("org.example.Feeds")
        defer { other.close() }
        try f.client.register("sync", .options(interval: 3600))
        let id = try #require(try f.client.call("TriggerFetch", [.string("sync")]).first?.uint64Value)
        let requested = try f.client.waitForSignal("FetchRequested")
        #expect(requested.arguments == [.string("sync"), .uint64(id)])
        #expect(requested.destination == f.client.uniqueName)
        try f.client.call("FinishFetch", [.uint64(id), .uint32(1)])
        // The broadcast FetchFinished reaches the other app, so its match rule
        // works; the FetchRequested before it did not.
        let finished = try other.waitForSignal("FetchFinished")
        #expect(finished.arguments == [.string(Fixture.appID), .string("sync"), .uint64(id), .uint32(1)])
        #expect(other.signals("FetchRequested").isEmpty, "app B saw app A's FetchRequested")
        #expect(f.client.signals("FetchRequested").count == 1)
    }

    @Test func pythonListenerForAllServiceSignalsSeesNoOtherAppsFetchRequested() async throws {
        let f = try Fixture()
        let directory = Paths.temporaryDirectory("pylisten")
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("listen.py")
        try Self.pythonListener.write(to: script, atomically: true, encoding: .utf8)
        let out = directory.appendingPathComponent("out").path
        let listener = try ChildProcess(
            "/usr/bin/python3", [script.path],
            environment: ProcessInfo.processInfo.environment.merging(f.bus.environment) { $1 }, stdout: out, stderr: out)
        defer { listener.terminate() }
        func output() -> String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
        try await eventually("the python listener to be ready") { output().contains("READY") ? true : nil }

        try f.client.register("sync", .options(interval: 3600))
        let id = try #require(try f.client.call("TriggerFetch", [.string("sync")]).first?.uint64Value)
        _ = try f.client.waitForSignal("FetchRequested")
        try f.client.call("FinishFetch", [.uint64(id), .uint32(2)])
        try await eventually("the listener to exit") { listener.isRunning ? nil : true }
        #expect(listener.exitCode == 0, "\(output())")
        let seen = output().split(whereSeparator: \.isNewline).filter { $0.hasPrefix("signal ") }
        #expect(seen == ["signal FetchFinished"], "\(output())")
    }

    /// A second app in dbus-python that listens to every signal from the
    /// service and exits at the first FetchFinished (or after 60 s).
    static let pythonListener = #"""
        import dbus
        import dbus.mainloop.glib
        from gi.repository import GLib

        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        bus = dbus.SessionBus()
        bus.request_name("org.example.PyListener", dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
        loop = GLib.MainLoop()

        def on_signal(*args, member=None):
            print("signal", member, flush=True)
            if member == "FetchFinished":
                loop.quit()

        bus.add_signal_receiver(on_signal, bus_name="org.bgfetch.BackgroundFetch1", member_keyword="member")
        # Generous: the whole suite runs in parallel on two cores.
        GLib.timeout_add_seconds(60, loop.quit)
        # A round trip to the bus so the match rule is in place before READY.
        bus.get_name_owner("org.bgfetch.BackgroundFetch1")
        print("READY", flush=True)
        loop.run()
        """#

    /// Waits until the busctl app no longer has `task` (its connection left).
    private func waitUntilBusctlTaskIsGone(_ f: Fixture, _ task: String) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let list = try f.client.call("ListTasks", interface: ServiceClient.manager).first?.arrayValue ?? []
            if !list.contains(where: { $0.structValue?.first == .string("busctl") && $0.structValue?.dropFirst().first == .string(task) }) {
                return
            }
            usleep(10_000)
        }
        throw HarnessError("busctl's task \(task) is still registered after its connection left")
    }
}

/// busctl's plain output split into words; a quoted string is one word,
/// without its quotes.
private func busctlTokens(_ text: String) -> [String] {
    var tokens: [String] = []
    var current = "", inQuotes = false, escaped = false, hasToken = false
    for character in text {
        if inQuotes {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                inQuotes = false
            } else {
                current.append(character)
            }
        } else if character == "\"" {
            inQuotes = true
            hasToken = true
        } else if character.isWhitespace {
            if hasToken { tokens.append(current) }
            current = ""
            hasToken = false
        } else {
            current.append(character)
            hasToken = true
        }
    }
    if hasToken { tokens.append(current) }
    return tokens
}

extension Array where Element: Equatable {
    /// Whether `sequence` occurs in it as consecutive elements.
    fileprivate func containsSequence(_ sequence: [Element]) -> Bool {
        guard !sequence.isEmpty, sequence.count <= count else { return sequence.isEmpty }
        return (0...(count - sequence.count)).contains { Array(self[$0..<($0 + sequence.count)]) == sequence }
    }
}
