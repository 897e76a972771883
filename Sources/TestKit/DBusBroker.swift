import Foundation
import Glibc

/// `dbus-broker-launch` started the way systemd starts it, for the tests and
/// the stress suite: it ignores `<listen>` and takes its listening socket as
/// fd 3 (`LISTEN_FDS=1`, `LISTEN_PID` its own pid, hence the shell), connects
/// to its own bus through `DBUS_SESSION_BUS_ADDRESS` (`DBUS_SYSTEM_BUS_ADDRESS`
/// in system scope), and logs to the journal socket ``BrokerNamespace``
/// provides.
public enum DBusBroker {
    public static let launcher = "/usr/bin/dbus-broker-launch"
    public static let broker = "/usr/bin/dbus-broker"

    public static var isInstalled: Bool { access(launcher, X_OK) == 0 && access(broker, X_OK) == 0 }

    /// Starts the launcher on a socket at `socket` with the dbus-daemon
    /// configuration file `config` and returns once `isReady` says so (it is
    /// given the bus address; TestKit speaks no D-Bus, so the caller
    /// probes, e.g. with a client that gets through Hello). `systemScope` runs
    /// it as a system bus (`--scope system`). Its output goes to `log`; the
    /// environment is `environment` (default: ours) plus the bus address.
    /// Prepares ``BrokerNamespace`` first, so this process must run in a
    /// mount namespace of its own.
    public static func launch(
        config: String, socket: String, systemScope: Bool = false, log: String,
        environment: [String: String]? = nil, timeout: TimeInterval = 10, isReady: (_ address: String) -> Bool
    ) throws -> ChildProcess {
        guard isInstalled else {
            throw HarnessError("dbus-broker is not installed (\(launcher) and \(broker); Debian package dbus-broker)")
        }
        try BrokerNamespace.prepare()
        let listener = try UnixSocket.listening(at: socket)
        defer { close(listener) }
        let address = "unix:path=\(socket)"
        var environment = environment ?? ProcessInfo.processInfo.environment
        environment[systemScope ? "DBUS_SYSTEM_BUS_ADDRESS" : "DBUS_SESSION_BUS_ADDRESS"] = address
        let process = try ChildProcess(
            "/bin/sh",
            ["-c", #"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --scope "$1" --config-file "$2""#, launcher, systemScope ? "system" : "user", config],
            environment: environment, stdout: log, stderr: log, descriptors: [3: listener])
        // The socket is there from the start; only the caller's probe tells when the bus serves.
        let deadline = Date().addingTimeInterval(timeout)
        while !isReady(address) {
            guard Date() < deadline, process.isRunning else {
                process.terminate()
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw HarnessError("dbus-broker did not start (exit \(process.exitCode.map(String.init) ?? "-")):\n\(output)")
            }
            usleep(10_000)
        }
        return process
    }
}

/// What dbus-broker-launch needs from the machine, made once per process and
/// only inside its own mount namespace (`unshare -m`): a datagram socket at
/// `/run/systemd/journal/socket` (it refuses to start without one), on a
/// tmpfs the host never sees.
public enum BrokerNamespace {
    public static let journalSocket = "/run/systemd/journal/socket"

    /// Done on first use; the same outcome for every call after that.
    private static let prepared: Result<Void, HarnessError> = Result { () throws(HarnessError) in try make() }

    /// Makes the namespace ready (once per process; later calls repeat the
    /// first outcome). Throws unless this process has a mount namespace of
    /// its own, so it never touches the host's /run.
    public static func prepare() throws(HarnessError) { try prepared.get() }

    private static func make() throws(HarnessError) {
        try requireOwnMountNamespace()
        // Our mounts must not travel back to the namespace we came from,
        // whatever propagation `unshare` was given.
        guard mount("none", "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else {
            throw HarnessError("cannot make the mounts of this namespace private: \(String(cString: strerror(errno)))")
        }
        // The smallest existing folder that holds the socket gets the tmpfs:
        // the journal's own folder on a systemd machine, else /run/systemd,
        // else /run.
        let candidates = ["/run/systemd/journal", "/run/systemd", "/run"]
        guard let target = candidates.first(where: { isDirectory($0) }) else { throw HarnessError("/run does not exist") }
        guard mount("tmpfs", target, "tmpfs", 0, "size=1m,mode=0755") == 0 else {
            throw HarnessError("cannot mount a tmpfs on \(target): \(String(cString: strerror(errno)))")
        }
        do {
            try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
        } catch {
            throw HarnessError("cannot create /run/systemd/journal on the tmpfs: \(error)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, UnixSocket.bind(fd, journalSocket) == 0 else {
            throw HarnessError("cannot bind \(journalSocket): \(String(cString: strerror(errno)))")
        }
        // Swallow what the launchers log, so they never block on a full socket.
        let drain = Thread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno != EINTR { return }
            }
        }
        drain.stackSize = 256 << 10
        drain.start()
    }

    /// Throws unless this process runs in a mount namespace of its own: it
    /// differs from pid 1's, or (where pid 1's cannot be read, as in some
    /// containers) from an ancestor's.
    private static func requireOwnMountNamespace() throws(HarnessError) {
        let advice = "run it as root under `unshare -m --propagation private`"
        guard let own = mountNamespace(of: "self") else { throw HarnessError("cannot read /proc/self/ns/mnt; \(advice)") }
        if let initial = mountNamespace(of: "1") {
            guard own != initial else {
                throw HarnessError("dbus-broker needs a journal socket under /run, and this process shares the host's mount namespace, so it will not touch /run; \(advice)")
            }
            return
        }
        var pid = getppid()
        while pid > 1 {
            if let theirs = mountNamespace(of: String(pid)), theirs != own { return }
            pid = parent(of: pid) ?? 0
        }
        throw HarnessError("cannot tell whether this process has a mount namespace of its own (pid 1's cannot be read and every ancestor shares ours), so it will not touch /run; \(advice)")
    }

    private static func mountNamespace(of process: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(process)/ns/mnt")
    }

    /// The parent pid from /proc/PID/stat (the field after the parenthesised name).
    private static func parent(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
