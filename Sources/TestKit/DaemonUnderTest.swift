import BackgroundFetchContract
import DBus
import Foundation
import Glibc

/// The real `bgfetchd` under test: started, stopped, killed and restarted
/// on one bus with one state directory. The one daemon driver of the tests,
/// the bench and the stress suite.
///
/// `@unchecked Sendable`: a harness object (not loop-confined) driven by one
/// test at a time; its process handle is replaced only by start and stop.
public final class DaemonUnderTest: @unchecked Sendable {
    public let executable: String
    public let address: String
    public let stateDirectory: String
    public let logFile: String
    public let bootIDFile: String
    public var extraArguments: [String]
    public var logLevel: String
    /// Serve the bus as `--system` (found through DBUS_SYSTEM_BUS_ADDRESS) rather than `--address`.
    public var asSystemBus = false
    /// Variables added to the daemon's environment (the test's own are inherited).
    public var environment: [String: String] = [:]
    public private(set) var process: ChildProcess?
    /// How many times it was started.
    public private(set) var starts = 0
    /// Of the last start: seconds from posix_spawn until the bus said the
    /// name is owned (stamped as the bus's NameOwnerChanged arrived).
    public private(set) var startSeconds: Double?
    private var launchedAt: UInt64 = 0
    private let control: BusConnection
    /// Whether the name has an owner, by the bus's last NameOwnerChanged, and when that arrived.
    private let owner = Locked<(owned: Bool, at: UInt64)>((false, 0))

    /// A daemon for the bus at `address`, keeping its boot id file and log
    /// in `directory` and its state in `stateDirectory` (default: `directory/state`).
    public init(
        executable: String, address: String, directory: String, arguments: [String] = [], stateDirectory: String? = nil,
        bootID: String = "boot-1", logLevel: String = "info"
    ) throws {
        self.executable = executable
        self.address = address
        self.stateDirectory = stateDirectory ?? directory + "/state"
        logFile = directory + "/bgfetchd.log"
        bootIDFile = directory + "/boot_id"
        extraArguments = arguments
        self.logLevel = logLevel
        control = try BusConnection.connect(.address(address), threadName: "daemon-control")
        control.setMessageHandler { [owner] message in
            guard message.kind == .signal, message.member == "NameOwnerChanged", message.interface == "org.freedesktop.DBus",
                message.arguments.first?.stringValue == Wire.busName
            else { return false }
            let stamp = Clocks.nanos
            owner.withLock { $0 = (message.arguments.last?.stringValue?.isEmpty == false, stamp) }
            return true
        }
        try control.addMatch(
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='\(Wire.busName)'")
        if !FileManager.default.fileExists(atPath: bootIDFile) { try setBootID(bootID) }
    }

    deinit {
        process?.terminate()
        control.close()
    }

    public func setBootID(_ id: String) throws {
        try (id + "\n").write(toFile: bootIDFile, atomically: true, encoding: .utf8)
    }

    public var arguments: [String] {
        (asSystemBus ? ["--system"] : ["--address", address])
            + ["--state-dir", stateDirectory, "--boot-id-file", bootIDFile, "--log-level", logLevel] + extraArguments
    }

    public var pid: pid_t? { process?.pid }
    public var isAlive: Bool { process?.isRunning ?? false }
    public var stats: ProcStats? { pid.flatMap(ProcStats.of) }
    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }
    public var databasePath: String { stateDirectory + "/bgfetch.db" }

    public func logTail(_ lines: Int = 4) -> String {
        log.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Starts it and waits until it owns its name.
    public func start(timeout: Double = 20) throws {
        try launch()
        try waitUntilServing(timeout: timeout)
    }

    /// Starts it without waiting.
    public func launch() throws {
        var environment = ProcessInfo.processInfo.environment
        // The machine's own system bus (NetworkManager, UPower, logind) stays
        // out of the tests unless a test names one.
        environment["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/bgfetch-tests-have-no-system-bus"
        environment.merge(self.environment) { $1 }
        if asSystemBus { environment["DBUS_SYSTEM_BUS_ADDRESS"] = address }
        // For a --sanitize=address build: a small quarantine, so RSS measures the daemon, not ASan.
        if environment["ASAN_OPTIONS"] == nil { environment["ASAN_OPTIONS"] = "quarantine_size_mb=16" }
        startSeconds = nil
        launchedAt = Clocks.nanos
        process = try ChildProcess(executable, arguments, environment: environment, stdout: logFile, stderr: logFile)
        starts += 1
    }

    /// Waits until it owns its name; throws if it exits first.
    public func waitUntilServing(timeout: Double = 20) throws {
        guard let child = process else { throw HarnessError("bgfetchd is not running") }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            // The bus said so after this start, and (against a late signal of an earlier start) says so now.
            let (owned, at) = owner.value
            if owned, at >= launchedAt, nameOwned {
                startSeconds = Double(at - launchedAt) / 1e9
                return
            }
            if !child.isRunning { throw HarnessError("bgfetchd exited with \(child.exitCode ?? -1); log tail:\n\(logTail())") }
            usleep(200)
        }
        throw HarnessError("bgfetchd did not take its name within \(timeout) s; log tail:\n\(logTail())")
    }

    public var nameOwned: Bool {
        (try? control.callBus("NameHasOwner", [.string(Wire.busName)]).first?.boolValue) ?? false
    }

    /// Stops it with `signal` (SIGTERM: clean; SIGKILL: a crash), reaps it
    /// (killing it after `timeout` seconds) and waits until the bus has seen
    /// its name go; returns its exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: Double = 15) -> Int32? {
        guard let process else { return nil }
        process.signal(signal)
        let code = process.wait(timeout: timeout)
        process.terminate()
        self.process = nil
        let deadline = Date().addingTimeInterval(10)
        while nameOwned, Date() < deadline { usleep(2_000) }
        return code
    }

    public func kill9() { stop(signal: SIGKILL) }
}
