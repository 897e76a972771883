import Foundation
import TestKit

/// systemd booted as PID 1 in a `systemd-nspawn` container over a throw-away
/// overlay of this machine's root, with what `make install` lays out
/// installed in it and `/opt/swift` hidden: the installed units, policy and
/// activation run as on a real machine, and nothing reaches the host.
///
/// The overlay's upper layer is a tmpfs of its own, so every write inside the
/// container (the install, new users, the daemon's state) goes there and is
/// gone at ``shutdown()``. Commands run inside through `nsenter`, with an
/// empty environment, as a login shell (`su -`), as a transient service
/// (`systemd-run`) or in a user's own manager, as a test asks.
final class SystemdContainer {
    /// What this machine lacks to boot the container, or nil if it has it all.
    static var whyUnavailable: String? {
        if getuid() != 0 { return "needs root to mount an overlay and boot a container" }
        if access(nspawn, X_OK) != 0 { return "\(nspawn) is missing (Debian's systemd-container; `make deps` installs it)" }
        if access(nsenter, X_OK) != 0 { return "\(nsenter) is missing (util-linux)" }
        let filesystems = (try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8)) ?? ""
        if !filesystems.contains("overlay") { return "the kernel has no overlay file system" }
        return nil
    }

    static let nspawn = "/usr/bin/systemd-nspawn"
    static let nsenter = "/usr/bin/nsenter"

    /// The tmpfs that holds the overlay's layers; the root is `base/root`.
    let base: URL
    var root: URL { base.appendingPathComponent("root") }
    var consoleLog: URL { base.appendingPathComponent("console.log") }
    private var nspawnProcess: ChildProcess?
    /// The container's PID 1, as this machine numbers it.
    private(set) var leader: pid_t = 0

    /// Mounts the overlay, lets `prepare` write into its root (an install),
    /// boots it and waits until systemd says the boot is over.
    init(prepare: (URL) throws -> Void) throws {
        // Outside the tests' temporary folder, which is removed recursively
        // at exit: nothing may ever walk into a mounted overlay of `/`.
        base = URL(fileURLWithPath: "/run/bgfetch-nspawn-\(getpid())")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        try Self.host("/bin/mount", ["-t", "tmpfs", "-o", "mode=0700", "tmpfs", base.path])
        for folder in ["upper", "work", "root"] {
            try FileManager.default.createDirectory(at: base.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        // The toolchain is hidden by a whiteout (a 0/0 character device)
        // in the upper layer, made before the overlay is mounted.
        try FileManager.default.createDirectory(at: base.appendingPathComponent("upper/opt"), withIntermediateDirectories: true)
        try Self.host("/bin/mknod", [base.appendingPathComponent("upper/opt/swift").path, "c", "0", "0"])
        let layers = "lowerdir=/,upperdir=\(base.path)/upper,workdir=\(base.path)/work"
        try Self.host("/bin/mount", ["-t", "overlay", "-o", layers, "overlay", root.path])
        do {
            try Self.host("/usr/bin/findmnt", ["-n", "-t", "overlay", root.path])  // writes below go to the tmpfs only
            // A machine id of its own: the container is not a first boot
            // (which would enable every unit by preset) and its journal is
            // not taken for the host's.
            try (UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() + "\n")
                .write(to: root.appendingPathComponent("etc/machine-id"), atomically: false, encoding: .utf8)
            try prepare(root)
            try boot()
        } catch {
            shutdown()
            throw error
        }
    }

    private func boot() throws {
        let process = try ChildProcess(
            Self.nspawn,
            ["--directory", root.path, "--boot", "--private-network", "--register=no", "--keep-unit",
             "--link-journal=no", "--console=passive", "--machine=bgfetch-test"],
            stdout: consoleLog.path, stderr: consoleLog.path)
        nspawnProcess = process
        let deadline = Date().addingTimeInterval(120)
        while leader == 0 {
            guard process.isRunning, Date() < deadline else { throw HarnessError("systemd-nspawn did not start PID 1:\n\(console)") }
            // nspawn's first child is a helper that exits; PID 1 is the
            // child that is pid 1 in a namespace of its own.
            let children = (try? String(contentsOfFile: "/proc/\(process.pid)/task/\(process.pid)/children", encoding: .utf8)) ?? ""
            for pid in children.split(separator: " ").compactMap({ pid_t($0) }) where Self.isNamespacePID1(pid) { leader = pid }
            usleep(20_000)
        }
        while Date() < deadline {
            let state = try run("systemctl is-system-running --wait", timeout: max(1, deadline.timeIntervalSinceNow))
            if state.stdout.hasPrefix("running") || state.stdout.hasPrefix("degraded") { return }
            usleep(100_000)
        }
        let jobs = (try? run("systemctl list-jobs --no-pager; systemctl --failed --no-pager", timeout: 10).stdout) ?? ""
        throw HarnessError("the container's systemd did not finish booting in 120 s; jobs left:\n\(jobs)\n\(console)")
    }

    /// Whether `pid` is PID 1 of a PID namespace below ours (`NSpid: <pid> 1`).
    static func isNamespacePID1(_ pid: pid_t) -> Bool {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return false }
        let ids = line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
        return ids.count == 2 && ids.last == "1"
    }

    /// What the container printed on its console.
    var console: String { (try? String(contentsOf: consoleLog, encoding: .utf8)) ?? "" }

    /// Runs `script` with /bin/sh inside the container, as root, in no
    /// session and no unit of its own, with a clean environment.
    @discardableResult
    func run(_ script: String, timeout: TimeInterval = 60) throws -> CommandResult {
        try Command.run(
            Self.nsenter,
            ["--target", "\(leader)", "--all", "--", "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG=C.UTF-8", "/bin/sh", "-c", script],
            timeout: timeout)
    }

    /// Runs `script` in a login shell of `user`: PAM opens a logind session
    /// (`session-N.scope`), as for someone who logged in.
    func runInLoginShell(_ user: String, _ script: String) throws -> CommandResult {
        try run("su - \(user) -c \(Self.quoted(script))")
    }

    /// Runs `script` as a transient system service running as `user`.
    func runAsService(_ user: String, _ script: String) throws -> CommandResult {
        try run("systemd-run --wait --pipe --quiet --property=User=\(user) /bin/sh -c \(Self.quoted(script))")
    }

    /// Runs `script` as `user` talking to their own (lingering) user manager
    /// and session bus.
    func runInUserManager(_ user: String, uid: Int, _ script: String) throws -> CommandResult {
        try run(
            "runuser -u \(user) -- env XDG_RUNTIME_DIR=/run/user/\(uid) DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/\(uid)/bus "
                + "/bin/sh -c \(Self.quoted(script))")
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Powers the container off (or kills it), and unmounts the overlay and
    /// its tmpfs: nothing of it is left.
    func shutdown() {
        if let process = nspawnProcess, process.isRunning {
            process.signal(SIGTERM)  // nspawn asks PID 1 for a clean power-off
            if process.wait(timeout: 30) == nil, leader != 0 {
                kill(leader, SIGKILL)  // the whole PID namespace goes with it
                process.wait(timeout: 10)
            }
        }
        nspawnProcess = nil
        _ = try? Command.run("/bin/umount", ["--recursive", "--lazy", base.path])
        rmdir(base.path)
    }

    deinit { shutdown() }

    private static func host(_ executable: String, _ arguments: [String]) throws {
        let result = try Command.run(executable, arguments)
        guard result.status == 0 else { throw HarnessError("\(executable) \(arguments.joined(separator: " ")): \(result)") }
    }
}
