import DBus
import Foundation
import Glibc
import ProcessKit

/// The bus implementation the integration tests run on, chosen with the
/// environment variable `BGFETCH_TEST_BUS`: `dbus-daemon` (the default) or
/// `dbus-broker`. `make test` runs the suite once on each.
enum TestBusImplementation: String, Sendable {
    case dbusDaemon = "dbus-daemon"
    case dbusBroker = "dbus-broker"

    static let variable = "BGFETCH_TEST_BUS"

    /// What the variable asks for; nil if it names neither implementation.
    static let selected: TestBusImplementation? = {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { return .dbusDaemon }
        return TestBusImplementation(rawValue: value)
    }()

    /// The suite runs on dbus-broker: for `.disabled(if:)` traits.
    static var isBroker: Bool { selected == .dbusBroker }
}

/// The one place that knows how to start each bus implementation on a socket
/// path of the test's choosing, with a dbus-daemon configuration file.
enum BusLauncher {
    /// Starts the selected implementation listening at `socket` and returns
    /// once it accepts clients. `systemBus` runs it as a system bus (broker:
    /// `--scope system`). Its own output goes to `log`.
    static func start(config: String, socket: String, systemBus: Bool = false, log: String) throws -> ChildProcess {
        switch TestBusImplementation.selected {
        case .dbusDaemon: return try startDaemon(config: config, socket: socket, log: log)
        case .dbusBroker: return try startBroker(config: config, socket: socket, systemBus: systemBus, log: log)
        case nil:
            let value = ProcessInfo.processInfo.environment[TestBusImplementation.variable] ?? ""
            throw TestError("\(TestBusImplementation.variable)=\(value): expected dbus-daemon or dbus-broker")
        }
    }

    private static func startDaemon(config: String, socket: String, log: String) throws -> ChildProcess {
        try? FileManager.default.removeItem(atPath: socket)
        let process = try ChildProcess(
            "/usr/bin/dbus-daemon", ["--config-file=\(config)", "--address=unix:path=\(socket)", "--nofork", "--nosyslog"],
            stdout: log, stderr: log)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) {
            guard Date() < deadline, process.isRunning else {
                throw TestError("dbus-daemon did not start:\n\(contents(of: log))")
            }
            usleep(10_000)
        }
        return process
    }

    /// `dbus-broker-launch` started the way systemd starts it: it ignores
    /// `<listen>` and takes its listening socket as fd 3 (`LISTEN_FDS=1`,
    /// `LISTEN_PID` its own pid, hence the shell), connects to its own bus
    /// through `DBUS_SESSION_BUS_ADDRESS` (`DBUS_SYSTEM_BUS_ADDRESS` in system
    /// scope), and logs to the journal socket ``BrokerNamespace`` provides.
    private static func startBroker(config: String, socket: String, systemBus: Bool, log: String) throws -> ChildProcess {
        let launcher = "/usr/bin/dbus-broker-launch"
        guard access(launcher, X_OK) == 0, access("/usr/bin/dbus-broker", X_OK) == 0 else {
            throw TestError("\(TestBusImplementation.variable)=dbus-broker, but dbus-broker is not installed (Debian package dbus-broker; make deps)")
        }
        try BrokerNamespace.prepared.get()
        let listener = try UnixSocket.listening(at: socket)
        defer { close(listener) }
        let address = "unix:path=\(socket)"
        var environment = ProcessInfo.processInfo.environment
        environment[systemBus ? "DBUS_SYSTEM_BUS_ADDRESS" : "DBUS_SESSION_BUS_ADDRESS"] = address
        let process = try ChildProcess(
            "/bin/sh",
            ["-c", #"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --scope "$1" --config-file "$2""#, launcher, systemBus ? "system" : "user", config],
            environment: environment, stdout: log, stderr: log, descriptors: [3: listener])
        // The socket is there from the start; the broker is ready once a client gets through Hello.
        let deadline = Date().addingTimeInterval(10)
        while true {
            if let probe = try? BusConnection.connect(.address(address), threadName: "broker-probe") {
                probe.close()
                return process
            }
            guard Date() < deadline, process.isRunning else {
                process.terminate()
                throw TestError("dbus-broker did not start (exit \(process.exitCode.map(String.init) ?? "-")):\n\(contents(of: log))")
            }
            usleep(10_000)
        }
    }

    private static func contents(of path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
}

/// What dbus-broker-launch needs from the machine, made once per test
/// process and only inside its own mount namespace (`unshare -m`): a datagram
/// socket at `/run/systemd/journal/socket` (it refuses to start without
/// one), on a tmpfs the host never sees.
enum BrokerNamespace {
    static let journalSocket = "/run/systemd/journal/socket"

    /// Done on first use; the same outcome for every bus after that.
    static let prepared: Result<Void, TestError> = Result { () throws(TestError) in try prepare() }

    private static func prepare() throws(TestError) {
        try requireOwnMountNamespace()
        // Our mounts must not travel back to the namespace we came from,
        // whatever propagation `unshare` was given.
        guard mount("none", "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else {
            throw TestError("cannot make the mounts of this namespace private: \(String(cString: strerror(errno)))")
        }
        // The smallest existing folder that holds the socket gets the tmpfs:
        // the journal's own folder on a systemd machine, else /run/systemd,
        // else /run.
        let candidates = ["/run/systemd/journal", "/run/systemd", "/run"]
        guard let target = candidates.first(where: { isDirectory($0) }) else { throw TestError("/run does not exist") }
        guard mount("tmpfs", target, "tmpfs", 0, "size=1m,mode=0755") == 0 else {
            throw TestError("cannot mount a tmpfs on \(target): \(String(cString: strerror(errno)))")
        }
        do {
            try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
        } catch {
            throw TestError("cannot create /run/systemd/journal on the tmpfs: \(error)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, UnixSocket.bind(fd, journalSocket) == 0 else {
            throw TestError("cannot bind \(journalSocket): \(String(cString: strerror(errno)))")
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
    private static func requireOwnMountNamespace() throws(TestError) {
        let advice = "run the broker pass as root under `unshare -m --propagation private` (as `make test` does)"
        guard let own = mountNamespace(of: "self") else { throw TestError("cannot read /proc/self/ns/mnt; \(advice)") }
        if let initial = mountNamespace(of: "1") {
            guard own != initial else {
                throw TestError("\(TestBusImplementation.variable)=dbus-broker needs a journal socket under /run, and this process shares the host's mount namespace, so it will not touch /run; \(advice)")
            }
            return
        }
        var pid = getppid()
        while pid > 1 {
            if let theirs = mountNamespace(of: String(pid)), theirs != own { return }
            pid = parent(of: pid) ?? 0
        }
        throw TestError("cannot tell whether this process has a mount namespace of its own (pid 1's cannot be read and every ancestor shares ours), so it will not touch /run; \(advice)")
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

/// Unix-domain sockets by path.
enum UnixSocket {
    /// A listening stream socket at `path` (replacing a stale one), close-on-exec
    /// so only the child it is handed to keeps it. Anyone may connect, as to
    /// dbus-daemon's sockets: the bus's own policy decides who gets in.
    static func listening(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: \(String(cString: strerror(errno)))") }
        unlink(path)
        guard bind(fd, path) == 0, chmod(path, 0o777) == 0, listen(fd, 256) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestError("cannot listen at \(path): \(reason)")
        }
        return fd
    }

    static func bind(_ fd: Int32, _ path: String) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            errno = ENAMETOOLONG
            return -1
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in bytes.enumerated() { buffer[i] = byte }
            buffer[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
