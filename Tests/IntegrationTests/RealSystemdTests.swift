import Foundation
import TestKit
import Testing

/// The installed tree under a real systemd: PID 1 of a container booted from
/// this machine's root through a throw-away overlay, with the real system
/// bus, logind, login shells, transient services and a user's own manager.
///
/// It boots a whole system, so `make test` runs it in a pass of its own
/// (`BGFETCH_REAL_SYSTEMD=1`, as root), not beside the other suites; without
/// the rights it needs it says why it skipped.
@Suite(
    .serialized, .timeLimit(.minutes(5)),
    .enabled(if: ProcessInfo.processInfo.environment["BGFETCH_REAL_SYSTEMD"] == "1", "runs in `make test`'s real-systemd pass"))
struct RealSystemdTests {
    /// alice's, bob's and carol's uids in the container.
    var uids: [Int] = []
    static let service = "org.bgfetch.BackgroundFetch1"
    static let path = "/org/bgfetch/BackgroundFetch1"

    /// `busctl` registering `task` with the service on `bus` (`--system` or
    /// `--user`); `stopOnTerminate false`, or the task would go with busctl.
    static func register(_ task: String, bus: String = "--system") -> String {
        "busctl \(bus) call \(service) \(path) \(service) RegisterTask 'sa{sv}' \(task) 1 stopOnTerminate b false"
    }

    /// The installed, statically linked binaries' build folder (`make release`).
    static let releaseBinaries = Paths.packageRoot.appendingPathComponent(".build-release/release")

    @Test(.enabled(if: SystemdContainer.whyUnavailable == nil, "\(SystemdContainer.whyUnavailable ?? "")"))
    mutating func theInstalledServiceUnderARealSystemd() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.releaseBinaries.appendingPathComponent("bgfetchd").path),
            "run `make release` first (`make test` does)")
        let container = try SystemdContainer { root in
            let install = try Command.run(
                "/usr/bin/make",
                ["-s", "-C", Paths.packageRoot.path, "install-files", "DESTDIR=\(root.path)", "PREFIX=/usr",
                 "BUILD_BIN=\(Self.releaseBinaries.path)"],
                timeout: 120)
            guard install.status == 0 else { throw HarnessError("make install-files: \(install)") }
            // The desktop example, for the desktop-activation case.
            let examples = root.appendingPathComponent("usr/local/share/bgfetch-tests")
            try FileManager.default.createDirectory(at: examples, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: Paths.desktopExample, toPath: examples.appendingPathComponent("desktop_fetcher.py").path)
        }
        defer { container.shutdown() }
        let users = try container.run("useradd -m alice && useradd -m bob && useradd -m carol && id -u alice bob carol && test ! -e /opt/swift")
        try #require(users.status == 0, "\(users)")
        uids = users.stdout.split(separator: "\n").compactMap { Int($0) }
        try #require(uids.count == 3)

        try systemBusActivatesTheHardenedUnit(container)
        try everyKindOfCallerIsServedAndKeptApart(container)
        try stateSurvivesARestart(container)
        try anOutstandingFetchDelaysSleepThroughTheRealLogind(container)
        try aLingeringUsersManagerRunsTheUserUnit(container)
        try aDesktopAppIsStartedTheDesktopWayInAUserSession(container)
        try theJournalIsClean(container)
    }

    /// The first call starts the unit through the bus (it is not enabled), as
    /// the `bgfetch` user, with the sandbox in force.
    func systemBusActivatesTheHardenedUnit(_ container: SystemdContainer) throws {
        let before = try container.run("systemctl is-active bgfetchd.service; systemctl is-enabled bgfetchd.service")
        #expect(before.stdout == "inactive\ndisabled\n", "\(before)")
        let first = try container.run("busctl --system call \(Self.service) \(Self.path) \(Self.service) GetStatus")
        #expect(first.status == 0 && first.stdout == "u 3\n", "\(first)")  // Available
        let after = try container.run("systemctl is-active bgfetchd.service")
        #expect(after.stdout == "active\n", "\(after)")

        let status = try container.run(
            "pid=$(systemctl show --value -p MainPID bgfetchd.service); ps -o user= -p $pid; "
                + "grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/$pid/status | tr -s '\\t ' ' '")
        #expect(status.stdout == "bgfetch\nCapEff: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\n", "\(status)")
        let sandbox = try container.run(
            "systemctl show -p ProtectSystem -p PrivateNetwork -p PrivateUsers -p ProtectHome bgfetchd.service")
        #expect(sandbox.stdout == "PrivateNetwork=yes\nPrivateUsers=yes\nProtectHome=yes\nProtectSystem=strict\n", "\(sandbox)")
        let state = try container.run("stat -c '%a %U' /var/lib/bgfetch /var/lib/bgfetch/bgfetch.db")
        #expect(state.stdout == "700 bgfetch\n600 bgfetch\n", "\(state)")
    }

    /// Root, a login shell, a service and an app's scope each get an
    /// identity (a service user cannot read their /proc/PID/exe), and each
    /// user sees only their own tasks.
    func everyKindOfCallerIsServedAndKeptApart(_ container: SystemdContainer) throws {
        let root = try container.run(Self.register("refresh"))
        #expect(root.status == 0, "\(root)")
        let login = try container.runInLoginShell("alice", Self.register("mail") + " && grep -o 'session-[^/]*[.]scope' /proc/self/cgroup | head -1")
        #expect(login.status == 0 && login.stdout.hasPrefix("session-"), "\(login)")
        let service = try container.runAsService("bob", Self.register("feeds"))
        #expect(service.status == 0, "\(service)")
        try startUserManager(container, "carol")
        let scope = try container.runInUserManager(
            "carol", uid: uids[2], "systemd-run --user --scope --quiet --unit=app-org.example.Feeds-42.scope " + Self.register("news"))
        #expect(scope.status == 0, "\(scope)")

        let all = try container.run("bgfetchctl --system list")  // root: every user's
        let rows = all.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).prefix(3).joined(separator: " ") }
        for row in ["0 busctl refresh", "\(uids[0]) busctl mail", "\(uids[1]) busctl feeds", "\(uids[2]) org.example.Feeds news"] {
            #expect(rows.contains(row), "\(row) missing from:\n\(all)")
        }
        #expect(all.stdout.contains("4 tasks listed."), "\(all)")

        let alice = try container.runInLoginShell("alice", "bgfetchctl --system list")
        #expect(alice.status == 0 && alice.stdout.contains("mail") && !alice.stdout.contains("feeds") && !alice.stdout.contains("refresh"), "\(alice)")
        let bob = try container.runAsService("bob", "bgfetchctl list --system")  // options after the subcommand too
        #expect(bob.status == 0 && bob.stdout.contains("feeds") && !bob.stdout.contains("mail"), "\(bob)")
        // Switching an app off acts on the caller's own uid: alice's
        // `busctl` is off, bob's and root's stay on.
        let off = try container.runInLoginShell("alice", "bgfetchctl --system disable busctl && bgfetchctl --system status busctl")
        #expect(off.status == 0 && off.stdout.contains("busctl (uid \(uids[0])): Denied"), "\(off)")
        let bobs = try container.runAsService("bob", "bgfetchctl --system status busctl")
        #expect(bobs.status == 0 && bobs.stdout.contains("busctl (uid \(uids[1])): Available"), "\(bobs)")
        let roots = try container.run("busctl --system call \(Self.service) \(Self.path) \(Self.service).Manager GetAppStatus s busctl")
        #expect(roots.stdout == "u 3\n", "\(roots)")  // Available
    }

    /// What was registered is still there after `systemctl restart`.
    func stateSurvivesARestart(_ container: SystemdContainer) throws {
        let restart = try container.run("systemctl restart bgfetchd.service && systemctl is-active bgfetchd.service")
        #expect(restart.stdout == "active\n", "\(restart)")
        let all = try container.run("bgfetchctl --system list --all")
        #expect(all.stdout.contains("4 tasks listed."), "\(all)")
    }

    /// The real logind (with its polkit check) gives the sandboxed daemon a
    /// delay inhibitor while a fetch is outstanding, and it goes with the fetch.
    func anOutstandingFetchDelaysSleepThroughTheRealLogind(_ container: SystemdContainer) throws {
        let app = """
            import dbus, time
            service = dbus.Interface(dbus.SystemBus().get_object("\(Self.service)", "\(Self.path)"), "\(Self.service)")
            service.RegisterTask("sleepy", {})
            service.TriggerFetch("sleepy")
            time.sleep(60)
            """
        let started = try container.run(
            "printf '%s\\n' \(SystemdContainer.quoted(app)) > /tmp/sleepy.py && chmod 644 /tmp/sleepy.py && "
                + "(su - alice -c 'exec python3 /tmp/sleepy.py' > /dev/null 2>&1 &)")
        #expect(started.status == 0, "\(started)")
        let inhibited = try container.run(
            "for i in $(seq 100); do systemd-inhibit --list --no-pager --no-legend | grep bgfetch && exit 0; sleep 0.1; done; exit 1")
        #expect(inhibited.status == 0, "no inhibitor from bgfetch: \(inhibited)")
        #expect(inhibited.stdout.contains("sleep") && inhibited.stdout.contains("delay"), "\(inhibited.stdout)")
        #expect(inhibited.stdout.contains("python3"), "the why names the app: \(inhibited.stdout)")
        // The app leaves: its task goes (stopOnTerminate), and the inhibitor with it.
        let released = try container.run(
            "pkill -f '^python3 /tmp/sleepy'; for i in $(seq 100); do systemd-inhibit --list --no-pager --no-legend | grep -q bgfetch || exit 0; "
                + "sleep 0.1; done; exit 1")
        #expect(released.status == 0, "the inhibitor outlived the fetch: \(released)")
    }

    /// A lingering user's own manager activates the user unit on that user's
    /// session bus, and it keeps the user's state private.
    func aLingeringUsersManagerRunsTheUserUnit(_ container: SystemdContainer) throws {
        let call = try container.runInUserManager("carol", uid: uids[2], Self.register("local", bus: "--user"))
        #expect(call.status == 0, "\(call)")
        let unit = try container.runInUserManager(
            "carol", uid: uids[2],
            "systemctl --user is-active bgfetchd.service && pid=$(systemctl --user show --value -p MainPID bgfetchd.service) && "
                + "grep -E '^(NoNewPrivs|Seccomp):' /proc/$pid/status | tr -s '\\t ' ' ' && bgfetchctl --user list && "
                + "stat -c '%a' ~/.local/state/bgfetch ~/.local/state/bgfetch/bgfetch.db")
        #expect(unit.status == 0, "\(unit)")
        #expect(unit.stdout.hasPrefix("active\nNoNewPrivs: 1\nSeccomp: 2\n"), "\(unit)")
        #expect(unit.stdout.contains("local") && unit.stdout.hasSuffix("700\n600\n"), "\(unit)")
        let system = try container.run("bgfetchctl --system list --all")
        #expect(!system.stdout.contains("local"), "the session task leaked to the system service: \(system)")
    }

    /// Under the real user manager, carol's session bus starts the Python
    /// GApplication example for its fetch by `ActivateAction`: its desktop
    /// entry and service file live in her `~/.local/share`.
    func aDesktopAppIsStartedTheDesktopWayInAUserSession(_ container: SystemdContainer) throws {
        let example = "/usr/local/share/bgfetch-tests/desktop_fetcher.py"
        let app = "org.example.DesktopFeeds"
        let setup = try container.runInUserManager(
            "carol", uid: uids[2],
            "mkdir -p ~/.local/share/applications ~/.local/share/dbus-1/services && "
                + "printf '[Desktop Entry]\\nType=Application\\nName=Feeds\\nExec=python3 \(example)\\nDBusActivatable=true\\n' "
                + "> ~/.local/share/applications/\(app).desktop && "
                + "printf '[D-BUS Service]\\nName=\(app)\\nExec=/usr/bin/python3 \(example) --gapplication-service\\n' "
                + "> ~/.local/share/dbus-1/services/\(app).service && "
                + "busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig && "
                + "python3 \(example)")
        #expect(setup.status == 0 && setup.stdout.contains("registered refresh"), "\(setup)")
        let answered = try container.runInUserManager(
            "carol", uid: uids[2],
            "for i in $(seq 50); do busctl --user status \(app) > /dev/null 2>&1 || break; sleep 0.1; done; "
                + "id=$(bgfetchctl --user trigger \(app) refresh) || exit 1; "
                + "for i in $(seq 100); do bgfetchctl --user history \(app) refresh --json | grep -q '\"resultName\" : \"NewData\"' && exit 0; "
                + "sleep 0.1; done; bgfetchctl --user history \(app) refresh; exit 1")
        #expect(answered.status == 0, "the activated app did not answer: \(answered)")
        let logged = try container.run("journalctl --no-pager -o cat _SYSTEMD_USER_UNIT=bgfetchd.service _UID=\(uids[2])")
        #expect(logged.stdout.contains("by=ActivateAction"), "\(logged)")
    }

    /// No warning from the daemon or the bus about it, and no failed unit.
    func theJournalIsClean(_ container: SystemdContainer) throws {
        let warnings = try container.run(
            "journalctl --boot --quiet --no-pager --priority=warning _SYSTEMD_UNIT=bgfetchd.service + SYSLOG_IDENTIFIER=bgfetchd; "
                + "journalctl --boot --quiet --no-pager --priority=warning --unit=dbus-broker.service --unit=dbus.service | grep -i bgfetch")
        #expect(warnings.stdout.isEmpty, "\(warnings)")
        let failed = try container.run("systemctl --failed --plain --no-legend")
        #expect(!failed.stdout.contains("bgfetchd"), "\(failed)")
        let failedForCarol = try container.runInUserManager("carol", uid: uids[2], "systemctl --user --failed --plain --no-legend")
        #expect(failedForCarol.status == 0 && !failedForCarol.stdout.contains("bgfetchd"), "\(failedForCarol)")
        // The daemon sees it logs to the journal: priorities, no timestamps.
        let logged = try container.run("journalctl --boot --no-pager -o cat _SYSTEMD_UNIT=bgfetchd.service")
        let lines = logged.stdout.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("serving: ") } && lines.contains { $0.hasPrefix("registered: ") }, "\(logged)")
        let info = try container.run("journalctl --boot --no-pager -o cat --priority=info..info _SYSTEMD_UNIT=bgfetchd.service")
        #expect(info.stdout.contains("registered: app=busctl"), "\(info)")
    }

    /// Lingering starts `user@UID.service`, as for a user whose timers run
    /// while they are logged out.
    func startUserManager(_ container: SystemdContainer, _ user: String) throws {
        let linger = try container.run("loginctl enable-linger \(user) && systemctl start user@$(id -u \(user)).service && ls /run/user/$(id -u \(user))/bus")
        try #require(linger.status == 0, "\(linger)")
    }
}
