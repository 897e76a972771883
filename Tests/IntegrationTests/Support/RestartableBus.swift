import BackgroundFetchContract
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
    private var daemonProcess: ChildProcess?

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
        if let daemon = daemonProcess, daemon.wait(timeout: 10) == nil { daemon.terminate() }
        daemonProcess = nil
    }

    /// Starts `bgfetchd` with its state in this bus's folder and waits for its name.
    func startDaemon(_ arguments: [String] = ["--minimum-interval-floor", "1"]) throws {
        let log = directory.appendingPathComponent("bgfetchd.log").path
        let process = try ChildProcess(
            Paths.bgfetchd,
            ["--address", address, "--state-dir", directory.appendingPathComponent("state").path, "--log-level", "debug"]
                + arguments,
            stdout: log, stderr: log)
        daemonProcess = process
        let client = try connect()
        defer { client.close() }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if (try? client.callBus("NameHasOwner", [.string(Wire.busName)]).first?.boolValue) == true { return }
            guard process.isRunning else { throw HarnessError("bgfetchd exited with \(process.exitCode ?? -1)") }
            usleep(10_000)
        }
        throw HarnessError("bgfetchd did not take its name")
    }

    func connect() throws -> BusConnection { try BusConnection.connect(.address(address), threadName: "test-client") }

    deinit {
        daemonProcess?.terminate()
        busProcess?.terminate()
        try? FileManager.default.removeItem(at: directory)
    }
}
