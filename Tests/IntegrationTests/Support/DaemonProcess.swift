import BackgroundFetchContract
import DBus
import Foundation
import TestKit

/// The real `bgfetchd`, started on a test bus with its own state directory.
final class DaemonProcess: @unchecked Sendable {
    let bus: TestBus
    let stateDirectory: URL
    let bootIDFile: URL
    let logFile: URL
    private(set) var process: ChildProcess?
    var extraArguments: [String]
    /// Serve the bus as `--system` (found through DBUS_SYSTEM_BUS_ADDRESS) rather than `--address`.
    var asSystemBus = false

    init(bus: TestBus, arguments: [String] = [], stateDirectory: URL? = nil) throws {
        self.bus = bus
        self.stateDirectory = stateDirectory ?? bus.directory.appendingPathComponent("state")
        bootIDFile = bus.directory.appendingPathComponent("boot_id")
        logFile = bus.directory.appendingPathComponent("bgfetchd.log")
        extraArguments = arguments
        if !FileManager.default.fileExists(atPath: bootIDFile.path) { try setBootID("boot-1") }
    }

    func setBootID(_ id: String) throws {
        try (id + "\n").write(to: bootIDFile, atomically: true, encoding: .utf8)
    }

    var arguments: [String] {
        (asSystemBus ? ["--system"] : ["--address", bus.address]) + ["--state-dir", stateDirectory.path, "--boot-id-file", bootIDFile.path, "--log-level", "debug"]
            + extraArguments
    }

    /// Starts it and waits until it owns its name.
    @discardableResult
    func start() throws -> Self {
        var environment = ProcessInfo.processInfo.environment
        if asSystemBus { environment["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address }
        process = try ChildProcess(Paths.bgfetchd, arguments, environment: environment, stdout: logFile.path, stderr: logFile.path)
        try waitForName(owned: true)
        return self
    }

    /// Stops it with `signal` (SIGTERM: clean; SIGKILL: a crash) and waits for it.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) throws -> Int32 {
        guard let process else { return 0 }
        process.signal(signal)
        let status = process.wait(timeout: 10)
        process.terminate()
        self.process = nil
        try waitForName(owned: false)
        return status ?? -1
    }

    var pid: Int32? { process?.pid }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    private func waitForName(owned: Bool) throws {
        let client = try bus.connect()
        defer { client.close() }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let has = (try? client.callBus("NameHasOwner", [.string(Wire.busName)]).first?.boolValue) ?? false
            if has == owned { return }
            if owned, let process, !process.isRunning {
                throw TestError("bgfetchd exited with \(process.exitCode ?? -1):\n\(log)")
            }
            usleep(10_000)
        }
        throw TestError("bgfetchd did not \(owned ? "take" : "release") its name:\n\(log)")
    }

    deinit { process?.terminate() }
}
