import DBus
import Foundation
import TestKit

/// A private bus (dbus-daemon, or dbus-broker with `BGFETCH_TEST_BUS=dbus-broker`)
/// that can be stopped and started again at the same address, with a bare
/// `bgfetchd` on it: for what happens when the bus itself goes away
/// (``TestBus`` keeps one bus for its whole life).
///
/// `@unchecked Sendable`: one test drives it from one thread; its process
/// handles change only in start and stop.
final class RestartableBus: @unchecked Sendable {
    let directory = Paths.temporaryDirectory("bgfetch-rbus")
    let socket: String
    var address: String { "unix:path=\(socket)" }
    private var busProcess: ChildProcess?
    private var daemon: DaemonUnderTest?

    init() throws {
        socket = directory.appendingPathComponent("bus").path
        try startBus()
    }

    func startBus() throws {
        let config = directory.appendingPathComponent("bus.conf").path
        try SessionBusConfig.text.write(toFile: config, atomically: true, encoding: .utf8)
        busProcess = try PrivateBus.start(
            try TestBusImplementation.kind(), config: config, socket: socket, log: directory.appendingPathComponent("bus.log").path)
    }

    /// Stops the bus; the `bgfetchd` on it exits by itself (its bus is gone).
    func stopBus() {
        busProcess?.terminate(SIGTERM)
        busProcess = nil
        if let process = daemon?.process, process.wait(timeout: 10) == nil { process.terminate() }
        daemon = nil
    }

    /// Starts `bgfetchd` with its state in this bus's folder and waits for its name.
    func startDaemon(_ arguments: [String] = ["--minimum-interval-floor", "1"]) throws {
        let daemon = try DaemonUnderTest(
            executable: Paths.bgfetchd, address: address, directory: directory.path, arguments: arguments, logLevel: "debug")
        try daemon.start(timeout: 15)
        self.daemon = daemon
    }

    func connect() throws -> BusConnection { try BusConnection.connect(.address(address), threadName: "test-client") }

    deinit {
        daemon = nil
        busProcess?.terminate()
        try? FileManager.default.removeItem(at: directory)
    }
}
