import BackgroundFetchContract
import DBus
import Foundation
import TestKit
import Glibc

/// The real `bgfetchd` under test: started, killed and restarted on one bus
/// with one state directory.
final class DaemonUnderTest: @unchecked Sendable {
    static let busName = Wire.busName

    let executable: String
    let address: String
    let stateDirectory: String
    let logFile: String
    let bootIDFile: String
    var extraArguments: [String]
    private(set) var process: Child?
    private let control: BusConnection
    /// How many times it was started.
    private(set) var starts = 0

    init(executable: String, address: String, directory: String, arguments: [String] = [], stateDirectory: String? = nil) throws {
        self.executable = executable
        self.address = address
        self.stateDirectory = stateDirectory ?? directory + "/state"
        logFile = directory + "/bgfetchd.log"
        bootIDFile = directory + "/boot_id"
        extraArguments = arguments
        if !FileManager.default.fileExists(atPath: bootIDFile) {
            try "stress-boot-1\n".write(toFile: bootIDFile, atomically: true, encoding: .utf8)
        }
        do {
            control = try BusConnection.connect(.address(address), threadName: "stress-control")
        } catch {
            throw StressError("cannot connect to the bus: \(error)")
        }
    }

    var arguments: [String] {
        ["--address", address, "--state-dir", stateDirectory, "--boot-id-file", bootIDFile, "--log-level", "info"]
            + extraArguments
    }

    var pid: pid_t? { process?.pid }
    var isAlive: Bool { process?.isRunning ?? false }
    var stats: ProcStats? { pid.flatMap(ProcStats.of) }
    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }
    var databasePath: String { stateDirectory + "/bgfetch.db" }

    /// Starts it and waits until it owns its name.
    /// The daemon every part uses: `settings.bgfetchd` on `bus` with a one-second
    /// interval floor (plus `arguments`), started and owning its name.
    static func started(
        on bus: PrivateBus, _ settings: Settings, arguments: [String] = [], stateDirectory: String? = nil
    ) throws -> DaemonUnderTest {
        let daemon = try DaemonUnderTest(
            executable: settings.bgfetchd, address: bus.address, directory: bus.directory,
            arguments: ["--minimum-interval-floor", "1"] + arguments, stateDirectory: stateDirectory)
        try daemon.start()
        return daemon
    }

    func start(timeout: Double = 20) throws {
        try launch()
        try waitUntilServing(timeout: timeout)
    }

    /// Starts it without waiting.
    func launch() throws {
        // For a --sanitize=address build: a small quarantine, so RSS measures the daemon, not ASan.
        var environment = ProcessInfo.processInfo.environment
        if environment["ASAN_OPTIONS"] == nil { environment["ASAN_OPTIONS"] = "quarantine_size_mb=16" }
        process = try Child(executable, arguments, environment: environment, stdout: logFile, stderr: logFile)
        starts += 1
    }

    /// Waits until it owns its name; throws if it exits first.
    func waitUntilServing(timeout: Double = 20) throws {
        guard let child = process else { throw StressError("bgfetchd is not running") }
        let deadline = Monotonic.now + timeout
        while Monotonic.now < deadline {
            if nameOwned { return }
            if !child.isRunning {
                throw StressError("bgfetchd exited with \(child.exitCode ?? -1); log tail:\n\(logTail())")
            }
            usleep(2_000)
        }
        throw StressError("bgfetchd did not take its name within \(timeout) s; log tail:\n\(logTail())")
    }

    var nameOwned: Bool {
        (try? control.callBus("NameHasOwner", [.string(Self.busName)]).first?.boolValue) ?? false
    }

    /// Kills it with SIGKILL, reaps it and waits until the bus has seen it go.
    func kill9() {
        stop(signal: SIGKILL)
    }

    /// Stops it with `signal`; returns its exit code.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32? {
        guard let process else { return nil }
        process.signal(signal)
        let code = process.wait(timeout: 15)
        process.terminate()
        self.process = nil
        let deadline = Monotonic.now + 10
        while nameOwned, Monotonic.now < deadline { usleep(2_000) }
        return code
    }

    func logTail(_ lines: Int = 4) -> String {
        log.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    deinit {
        process?.terminate()
        control.close()
    }
}
