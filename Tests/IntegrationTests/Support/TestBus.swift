import DBus
import Foundation
import TestKit

/// A private bus for one test (dbus-daemon, or dbus-broker with
/// `BGFETCH_TEST_BUS=dbus-broker`): its own config, its own socket in a
/// temporary folder, stopped when the test lets go of it.
final class TestBus: @unchecked Sendable {
    let directory: URL
    let address: String
    private let process: ChildProcess

    init(config: String = "session-bus.conf", serviceDirectory: URL? = nil, substitutions: [String: String] = [:]) throws {
        directory = Paths.temporaryDirectory("bgfetch-bus")
        let socket = directory.appendingPathComponent("bus").path
        address = "unix:path=\(socket)"
        var configPath = Paths.fixtures.appendingPathComponent(config).path
        var text = try String(contentsOfFile: configPath, encoding: .utf8)
        if serviceDirectory != nil || !substitutions.isEmpty {
            // A copy of the config with its placeholders filled in, and a
            // folder of activation files if one is given.
            for (placeholder, value) in substitutions { text = text.replacingOccurrences(of: placeholder, with: value) }
            if let serviceDirectory {
                text = text.replacingOccurrences(
                    of: "</busconfig>", with: "  <servicedir>\(serviceDirectory.path)</servicedir>\n</busconfig>")
            }
            configPath = directory.appendingPathComponent("bus.conf").path
            try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        }
        // Other users' clients must reach the socket.
        chmod(directory.path, 0o755)
        do {
            process = try BusLauncher.start(
                config: configPath, socket: socket, systemBus: text.contains("<type>system</type>"),
                log: directory.appendingPathComponent("bus.log").path)
        } catch {
            // No deinit runs for a half-made bus: its folder goes here (the error quotes the log).
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// The bus's process: dbus-daemon, or dbus-broker-launch (which runs dbus-broker as its child).
    var pid: pid_t { process.pid }

    /// The environment a client process needs to find this bus as its session bus.
    var environment: [String: String] { ["DBUS_SESSION_BUS_ADDRESS": address] }

    func connect() throws -> BusConnection { try BusConnection.connect(.address(address), threadName: "test-client") }

    deinit {
        process.terminate(SIGTERM)
        try? FileManager.default.removeItem(at: directory)
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
