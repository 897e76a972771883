import DBus
import Foundation
import TestKit
import Testing

/// D-Bus activation both ways: the bus starts bgfetchd on the first call, and
/// bgfetchd starts an app that has no connection when its fetch falls due.
@Suite(
    .timeLimit(.minutes(2)),
    .disabled(
        if: TestBusImplementation.isBroker,
        """
        dbus-broker-launch starts every activatable service through systemd (the SystemdService= unit, or a \
        transient unit made from Exec=) and never runs Exec= itself; the private test bus has no systemd, so the \
        activation fails ("Could not activate remote peer: unit failed")
        """))
struct ActivationTests {
    /// A folder of activation files, written from the texts given.
    func serviceDirectory(_ files: [String: String]) throws -> URL {
        let dir = Paths.temporaryDirectory("bgfetch-services")
        for (name, text) in files {
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return dir
    }

    @Test func theFirstCallStartsBgfetchdByActivation() throws {
        let state = Paths.temporaryDirectory("bgfetch-state")
        let boot = state.appendingPathComponent("boot_id")
        try "activated-boot\n".write(to: boot, atomically: true, encoding: .utf8)
        // Our own activation file, with the built binary in place of @bindir@.
        let template = try String(
            contentsOf: Paths.packageRoot.appendingPathComponent("dbus/services/org.bgfetch.BackgroundFetch1.service"), encoding: .utf8)
        let service = template.replacingOccurrences(
            of: "Exec=@bindir@/bgfetchd --session",
            with: "Exec=\(Paths.bgfetchd) --session --state-dir \(state.path) --boot-id-file \(boot.path)")
        #expect(service != template)
        let bus = try TestBus(serviceDirectory: try serviceDirectory(["org.bgfetch.BackgroundFetch1.service": service]))
        let client = try ServiceClient(bus: bus, ownName: "org.example.First")
        defer { client.close() }
        #expect(try client.call("GetStatus") == [.uint32(3)])
        try client.register("first")
        #expect(try client.tasks().keys.sorted() == ["first"])
        #expect(FileManager.default.fileExists(atPath: state.appendingPathComponent("bgfetch.db").path))
    }

    @Test func aDueFetchStartsAnActivatableAppAndReachesIt() throws {
        let marker = Paths.temporaryDirectory("bgfetch-marker").appendingPathComponent("answered")
        let script = Paths.temporaryDirectory("bgfetch-app").appendingPathComponent("app.py")
        try """
            import dbus, dbus.mainloop.glib, sys
            from gi.repository import GLib
            dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
            bus = dbus.SessionBus()
            loop = GLib.MainLoop()
            def on_fetch(name, request_id):
                app = dbus.Interface(bus.get_object("org.bgfetch.BackgroundFetch1", "/org/bgfetch/BackgroundFetch1"),
                                     "org.bgfetch.BackgroundFetch1")
                app.FinishFetch(request_id, dbus.UInt32(2))
                open(sys.argv[1], "w").write("%s %d" % (name, request_id))
                loop.quit()
            # Listen first, then take the name: the fetch is sent as soon as the name is ours.
            bus.add_signal_receiver(on_fetch, "FetchRequested", "org.bgfetch.BackgroundFetch1")
            bus.request_name("org.example.Sleeper")
            GLib.timeout_add_seconds(20, loop.quit)
            loop.run()
            """.write(to: script, atomically: true, encoding: .utf8)
        let service = """
            [D-BUS Service]
            Name=org.example.Sleeper
            Exec=/usr/bin/python3 \(script.path) \(marker.path)
            """
        let bus = try TestBus(serviceDirectory: try serviceDirectory(["org.example.Sleeper.service": service]))
        let daemon = try DaemonProcess(bus: bus, arguments: ["--minimum-interval-floor", "1"])
        try daemon.start()
        // The app registers, then leaves the bus.
        let app = try ServiceClient(bus: bus, ownName: "org.example.Sleeper")
        try app.register("sync", .options(interval: 3600, stopOnTerminate: false))
        app.close()
        let manager = try ServiceClient(bus: bus, ownName: "org.example.Panel")
        defer { manager.close() }
        try waitUntil {
            let names = try manager.connection.callBus("ListNames").first?.arrayValue ?? []
            return !names.contains(.string("org.example.Sleeper"))
        }
        let id = try #require(
            try manager.call("TriggerTask", [.string("org.example.Sleeper"), .string("sync")], interface: ServiceClient.manager)
                .first?.uint64Value)
        try waitUntil(timeout: 20) { FileManager.default.fileExists(atPath: marker.path) }
        try waitUntil { (try? String(contentsOf: marker, encoding: .utf8)) == "sync \(id)" }
        let history = try manager.call("GetHistory", [.string("org.example.Sleeper"), .string("sync")], interface: ServiceClient.manager)
        #expect(history.first?.arrayValue?.last?.structValue?[2] == .uint32(2))
    }

    /// `appID` registers `task` with `options` and leaves the bus; returns a
    /// manager client once the bus says the app is gone.
    func registerAndLeave(_ bus: TestBus, _ appID: String, _ task: String, _ options: [String: DBusValue]) throws -> ServiceClient {
        let app = try ServiceClient(bus: bus, ownName: appID)
        try app.register(task, options)
        app.close()
        let manager = try ServiceClient(bus: bus, ownName: "org.example.Panel")
        try waitUntil {
            let names = try manager.connection.callBus("ListNames").first?.arrayValue ?? []
            return !names.contains(.string(appID))
        }
        return manager
    }

    /// Starts bgfetchd on `bus` with a `DBusActivatable=true` desktop entry
    /// for the app in a temporary `XDG_DATA_DIRS`.
    func daemonWithDesktopEntry(_ appID: String, on bus: TestBus) throws -> DaemonProcess {
        let data = Paths.temporaryDirectory("bgfetch-xdg-data")
        let applications = data.appendingPathComponent("applications")
        try FileManager.default.createDirectory(at: applications, withIntermediateDirectories: true)
        try """
            [Desktop Entry]
            Type=Application
            Name=Feeds
            Exec=/usr/bin/python3 \(Paths.desktopExample)
            DBusActivatable=true
            """.write(to: applications.appendingPathComponent("\(appID).desktop"), atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(bus: bus, arguments: ["--minimum-interval-floor", "60"])
        daemon.environment = ["XDG_DATA_DIRS": data.path, "XDG_DATA_HOME": Paths.temporaryDirectory("bgfetch-xdg-home").path]
        try daemon.start()
        return daemon
    }

    /// The Python GApplication example, not running, is started by
    /// `ActivateAction("background-fetch", [<(task, id)>], {})` and answers.
    @Test func aDesktopAppIsStartedByActivateActionAndAnswers() throws {
        let appID = "org.example.DesktopFeeds"
        let service = """
            [D-BUS Service]
            Name=\(appID)
            Exec=/usr/bin/python3 \(Paths.desktopExample) --gapplication-service
            """
        let bus = try TestBus(serviceDirectory: try serviceDirectory(["\(appID).service": service]))
        let daemon = try daemonWithDesktopEntry(appID, on: bus)
        // Run by hand once: it registers its task and quits.
        let registered = try Command.run("/usr/bin/python3", [Paths.desktopExample], environment: bus.environment)
        #expect(registered.status == 0 && registered.stdout.contains("registered refresh"), "\(registered)")
        let manager = try ServiceClient(bus: bus, ownName: "org.example.Panel")
        defer { manager.close() }
        try waitUntil {
            let names = try manager.connection.callBus("ListNames").first?.arrayValue ?? []
            return !names.contains(.string(appID))
        }
        let id = try #require(
            try manager.call("TriggerTask", [.string(appID), .string("refresh")], interface: ServiceClient.manager).first?.uint64Value)
        try waitUntil(timeout: 20) {
            let history = try manager.call("GetHistory", [.string(appID), .string("refresh")], interface: ServiceClient.manager)
            return history.first?.arrayValue?.last?.structValue?[2] == .uint32(2)
        }
        // The app answers inside the call, so the call's own log line may come after the answer.
        try waitUntil { daemon.log.contains("by=ActivateAction") }
        #expect(daemon.log.contains("request=\(id)") && !daemon.log.contains("by=bus activation"), "\(daemon.log)")
    }

    /// The Swift example, not running, is started by `ActivateAction` and
    /// answers through the library with no code of its own for it.
    @Test func theSwiftExampleIsStartedByActivateActionAndAnswers() async throws {
        let appID = "org.example.SwiftFeeds"
        let service = """
            [D-BUS Service]
            Name=\(appID)
            Exec=\(Paths.swiftExample) --app-id \(appID) --once
            """
        let bus = try TestBus(serviceDirectory: try serviceDirectory(["\(appID).service": service]))
        let daemon = try daemonWithDesktopEntry(appID, on: bus)
        let manager = try ServiceClient(bus: bus, ownName: "org.example.Panel")
        defer { manager.close() }
        // Run by hand: it registers (stopOnTerminate false), then is stopped.
        do {
            let app = try BackgroundProcess(Paths.swiftExample, ["--app-id", appID], environment: bus.environment)
            try await eventually("the example's task") { try manager.allTasks()[appID]?["refresh"] }
            app.send(SIGTERM)
            try await app.waitForExit()
        }
        try await eventually("the app gone from the bus") {
            let names = try manager.connection.callBus("ListNames").first?.arrayValue ?? []
            return names.contains(.string(appID)) ? nil : true
        }
        let id = try #require(
            try manager.call("TriggerTask", [.string(appID), .string("refresh")], interface: ServiceClient.manager).first?.uint64Value)
        try await eventually("the activated app's answer", timeout: .seconds(20)) {
            let history = try manager.call("GetHistory", [.string(appID), .string("refresh")], interface: ServiceClient.manager)
            return history.first?.arrayValue?.last?.structValue?[2] == .uint32(2) ? true : nil
        }
        try await eventually("the call's log line") { daemon.log.contains("by=ActivateAction") ? true : nil }
        #expect(daemon.log.contains("request=\(id)"), "\(daemon.log)")
    }

    /// An entry that says DBusActivatable but no app behind it: the fetch
    /// waits as pending, and the log says why.
    @Test func aFailedDesktopActivationLeavesTheFetchPending() throws {
        let appID = "org.example.Ghost"
        let bus = try TestBus()
        let daemon = try daemonWithDesktopEntry(appID, on: bus)
        let manager = try registerAndLeave(bus, appID, "sync", .options(interval: 3600, stopOnTerminate: false))
        defer { manager.close() }
        try manager.call("TriggerTask", [.string(appID), .string("sync")], interface: ServiceClient.manager)
        try waitUntil { daemon.log.contains("cannot start the app") }
        #expect(daemon.log.contains("by=ActivateAction") && daemon.log.contains("org.freedesktop.DBus.Error.ServiceUnknown"), "\(daemon.log)")
        try waitUntil { try manager.allTasks()[appID]?["sync"]?["state"]?.stringValue == "pending" }
    }

    /// With `launch: never` the app is not started: the fetch waits.
    @Test func launchNeverLeavesADesktopAppAlone() throws {
        let appID = "org.example.DesktopFeeds"
        let bus = try TestBus()
        let daemon = try daemonWithDesktopEntry(appID, on: bus)
        let manager = try registerAndLeave(
            bus, appID, "sync", ["minimumInterval": .uint32(3600), "stopOnTerminate": .bool(false), "launch": .string("never")])
        defer { manager.close() }
        try manager.call("TriggerTask", [.string(appID), .string("sync")], interface: ServiceClient.manager)
        // The task turned pending in the trigger's own round: the reply is the barrier.
        #expect(try manager.allTasks()[appID]?["sync"]?["state"]?.stringValue == "pending")
        #expect(!daemon.log.contains("activating"), "\(daemon.log)")
    }
}
