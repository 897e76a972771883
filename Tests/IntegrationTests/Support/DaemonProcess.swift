import Foundation
import TestKit

/// The real `bgfetchd` on a test bus (TestKit's ``DaemonUnderTest``), with
/// the tests' paths as URLs and stops that must release the name.
final class DaemonProcess: Sendable {
    let bus: TestBus
    let daemon: DaemonUnderTest

    init(bus: TestBus, arguments: [String] = [], stateDirectory: URL? = nil) throws {
        self.bus = bus
        daemon = try DaemonUnderTest(
            executable: Paths.bgfetchd, address: bus.address, directory: bus.directory.path, arguments: arguments,
            stateDirectory: stateDirectory?.path, logLevel: "debug")
    }

    var stateDirectory: URL { URL(fileURLWithPath: daemon.stateDirectory) }
    var logFile: URL { URL(fileURLWithPath: daemon.logFile) }
    var pid: Int32? { daemon.pid }
    var log: String { daemon.log }
    var asSystemBus: Bool {
        get { daemon.asSystemBus }
        set { daemon.asSystemBus = newValue }
    }
    var environment: [String: String] {
        get { daemon.environment }
        set { daemon.environment = newValue }
    }

    func setBootID(_ id: String) throws { try daemon.setBootID(id) }

    /// Starts it and waits until it owns its name.
    @discardableResult
    func start() throws -> Self {
        try daemon.start(timeout: 15)
        return self
    }

    /// Stops it with `signal` (SIGTERM: clean; SIGKILL: a crash), waits for
    /// it, and fails unless the bus saw its name go.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) throws -> Int32 {
        guard daemon.process != nil else { return 0 }
        let status = daemon.stop(signal: signal)
        if daemon.nameOwned { throw HarnessError("bgfetchd did not release its name:\n\(log)") }
        return status ?? -1
    }
}
