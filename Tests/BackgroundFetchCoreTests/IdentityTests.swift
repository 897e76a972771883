import Foundation
import Testing

@testable import BackgroundFetchCore

/// A throwaway directory laid out like `/proc`, removed when the test ends.
private final class FakeProc {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("bgfetch-proc-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: root)
    }

    var resolver: AppIdentityResolver { AppIdentityResolver(procRoot: root.path) }

    /// Creates `<root>/<pid>/` with whichever of the three files are given.
    func process(
        _ pid: UInt32, flatpakInfo: String? = nil, cgroup: String? = nil, exe: String? = nil,
        cmdline: [String]? = nil, comm: String? = nil
    ) throws {
        let dir = root.appendingPathComponent("\(pid)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if let flatpakInfo {
            let rootDir = dir.appendingPathComponent("root", isDirectory: true)
            try FileManager.default.createDirectory(at: rootDir, withIntermediateDirectories: true)
            try flatpakInfo.write(
                to: rootDir.appendingPathComponent(".flatpak-info"), atomically: true, encoding: .utf8)
        }
        if let cgroup {
            try cgroup.write(to: dir.appendingPathComponent("cgroup"), atomically: true, encoding: .utf8)
        }
        if let exe {
            try FileManager.default.createSymbolicLink(
                atPath: dir.appendingPathComponent("exe").path, withDestinationPath: exe)
        }
        if let cmdline {
            try Data(cmdline.joined(separator: "\0").utf8 + [0]).write(to: dir.appendingPathComponent("cmdline"))
        }
        if let comm { try (comm + "\n").write(to: dir.appendingPathComponent("comm"), atomically: true, encoding: .utf8) }
    }
}

private let flatpakInfo = """
    [Application]
    name=org.example.Flatpaked
    runtime=runtime/org.gnome.Platform/x86_64/47

    [Instance]
    instance-id=1234567
    """

private func cgroupV2(_ unit: String) -> String {
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/\(unit)\n"
}

@Suite(.timeLimit(.minutes(1)))
struct IdentityTests {
    @Test func flatpakWinsOverEverything() throws {
        let proc = try FakeProc()
        try proc.process(
            42, flatpakInfo: flatpakInfo, cgroup: cgroupV2("app-gnome-org.gnome.Mail-12345.scope"),
            exe: "/usr/bin/busctl")
        #expect(proc.resolver.appID(pid: 42, ownedNames: ["org.example.Name"]) == "org.example.Flatpaked")
    }

    @Test func cgroupWinsOverNamesAndExe() throws {
        let proc = try FakeProc()
        try proc.process(42, cgroup: cgroupV2("app-gnome-org.gnome.Mail-12345.scope"), exe: "/usr/bin/busctl")
        #expect(proc.resolver.appID(pid: 42, ownedNames: ["org.example.Name"]) == "org.gnome.Mail")
    }

    @Test func flatpakInfoWithoutNameFallsThroughToCgroup() throws {
        let proc = try FakeProc()
        try proc.process(
            42, flatpakInfo: "[Instance]\nname=not-the-app\n",
            cgroup: cgroupV2("app-org.example.Sync@autostart.service"))
        #expect(proc.resolver.appID(pid: 42, ownedNames: []) == "org.example.Sync")
    }

    @Test func namesWinOverExeWhenCgroupIsNoApp() throws {
        let proc = try FakeProc()
        try proc.process(
            42, cgroup: "0::/user.slice/user-1000.slice/session-2.scope\n", exe: "/usr/bin/busctl")
        #expect(proc.resolver.appID(pid: 42, ownedNames: ["org.example.Name"]) == "org.example.Name")
    }

    @Test func lowestSortedWellKnownNameIsChosenAndUniqueNamesIgnored() throws {
        let proc = try FakeProc()
        try proc.process(42, exe: "/usr/bin/busctl")
        let names = [":1.5", "org.example.Zeta", "com.example.Alpha", "org.example.Beta"]
        #expect(proc.resolver.appID(pid: 42, ownedNames: names) == "com.example.Alpha")
        #expect(proc.resolver.appID(pid: nil, ownedNames: names) == "com.example.Alpha")
        // Unique names alone do not count: the executable is used instead.
        #expect(proc.resolver.appID(pid: 42, ownedNames: [":1.1", ":1.22"]) == "busctl")
    }

    @Test func exeBasenameIsTheLastResort() throws {
        let proc = try FakeProc()
        try proc.process(42, cgroup: "0::/\n", exe: "/usr/bin/busctl")
        try proc.process(43, exe: "/opt/app/bin/feed-reader (deleted)")
        #expect(proc.resolver.appID(pid: 42, ownedNames: []) == "busctl")
        #expect(proc.resolver.appID(pid: 43, ownedNames: []) == "feed-reader")
    }

    /// A service user may not read another uid's exe link: argv[0], then comm.
    @Test func argv0ThenCommWhereTheExeLinkCannotBeRead() throws {
        let proc = try FakeProc()
        try proc.process(44, cmdline: ["/usr/bin/python3", "/home/u/sync.py"], comm: "python3")
        try proc.process(45, cmdline: ["-bash"], comm: "bash")
        try proc.process(46, comm: "gdbus")
        try proc.process(47, exe: "/usr/bin/busctl", cmdline: ["other"], comm: "other")
        #expect(proc.resolver.appID(pid: 44, ownedNames: []) == "python3")
        #expect(proc.resolver.appID(pid: 45, ownedNames: []) == "-bash")
        #expect(proc.resolver.appID(pid: 46, ownedNames: []) == "gdbus")
        #expect(proc.resolver.appID(pid: 47, ownedNames: []) == "busctl", "the exe link wins where it can be read")
    }

    @Test func nothingFoundGivesNil() throws {
        let proc = try FakeProc()
        #expect(proc.resolver.appID(pid: nil, ownedNames: []) == nil)
        #expect(proc.resolver.appID(pid: nil, ownedNames: [":1.7"]) == nil)
        #expect(proc.resolver.appID(pid: 999, ownedNames: []) == nil)  // no such process
    }

    @Test func cgroupV1FileIsSearched() throws {
        let proc = try FakeProc()
        let v1 = """
            12:pids:/user.slice/user-1000.slice/user@1000.service
            4:memory:/
            1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/app-kde-org.kde.kmail2-1a2b.scope
            """
        try proc.process(42, cgroup: v1, exe: "/usr/bin/kmail")
        #expect(proc.resolver.appID(pid: 42, ownedNames: []) == "org.kde.kmail2")
    }

    @Test func terminalChildIsNotTheTerminal() throws {
        // A command run in GNOME Terminal lives in a vte-spawn scope under the
        // terminal's slice; like xdg-desktop-portal, that is not the terminal's app id.
        let proc = try FakeProc()
        let path = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
            + "app-gnome-org.gnome.Terminal-92502.slice/vte-spawn-228ae109.scope\n"
        try proc.process(42, cgroup: path, exe: "/usr/bin/bgfetchctl")
        #expect(proc.resolver.appID(pid: 42, ownedNames: []) == "bgfetchctl")
    }

    @Test func subCgroupInsideAnAppUnitStillCounts() throws {
        let proc = try FakeProc()
        try proc.process(42, cgroup: cgroupV2("app-flatpak-org.example.Feeds-9876.scope/worker"))
        #expect(proc.resolver.appID(pid: 42, ownedNames: []) == "org.example.Feeds")
    }

    @Test(arguments: [
        ("app-gnome-org.gnome.Mail-12345.scope", "org.gnome.Mail"),
        ("app-org.gnome.Mail-12345.scope", "org.gnome.Mail"),
        ("app-flatpak-org.example.Feeds-9876.scope", "org.example.Feeds"),
        ("app-org.example.Sync@autostart.service", "org.example.Sync"),
        ("app-gnome-org.example.Sync@ab12.service", "org.example.Sync"),
        ("app-kde-org.kde.kmail2-1a2b.scope", "org.kde.kmail2"),
        (#"app-org.example.My\x2dApp-77.scope"#, "org.example.My-App"),
        ("app-gnome-org.example.my-app-4242.scope", "org.example.my-app"),
        (#"app-gnome-org.gnome.Evolution\x2dalarm\x2dnotify-2437.scope"#, "org.gnome.Evolution-alarm-notify"),
        ("app-KDE-org.kde.okular@12345.service", "org.kde.okular"),
        ("app-org.kde.amarok.service", "org.kde.amarok"),
        ("app-gnome-org.gnome.SettingsDaemon.DiskUtilityNotify-autostart.service",
         "org.gnome.SettingsDaemon.DiskUtilityNotify"),
        ("app-gnome-org.gnome.Terminal-92502.slice", "org.gnome.Terminal"),
        ("app-com.obsproject.Studio-d70acc38b5154a3a8b4a60accc4b15f4.scope", "com.obsproject.Studio"),
        ("app-gnome-firefox-4242.scope", "firefox"),
    ])
    func unitNameGivesAppID(unit: String, expected: String) {
        #expect(AppIdentityResolver.appID(fromUnitName: unit) == expected)
    }

    @Test(arguments: [
        "session-2.scope", "user@1000.service", "init.scope", "dbus.service",
        "app-not-a-well-formed-unit-name", "app-.scope", "app-org.example.Mail.scope",
        #"app-org.example.Bad\x01-12.scope"#,
    ])
    func nonAppUnitGivesNil(unit: String) {
        #expect(AppIdentityResolver.appID(fromUnitName: unit) == nil)
    }

    @Test func flatpakInfoParsing() {
        #expect(AppIdentityResolver.appID(fromFlatpakInfo: flatpakInfo) == "org.example.Flatpaked")
        #expect(AppIdentityResolver.appID(fromFlatpakInfo: "[Application]\n# c\n name = org.x.Y \n") == "org.x.Y")
        #expect(AppIdentityResolver.appID(fromFlatpakInfo: "[Runtime]\nname=org.gnome.Platform\n") == nil)
        #expect(AppIdentityResolver.appID(fromFlatpakInfo: "[Application]\nname=\n") == nil)
        #expect(AppIdentityResolver.appID(fromFlatpakInfo: "") == nil)
    }
}
