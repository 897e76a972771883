import DBus
import Foundation
import TestKit

/// A private bus for one test (dbus-daemon, or dbus-broker with
/// `BGFETCH_TEST_BUS=dbus-broker`): the suites' session bus or a fixture's
/// configuration, its own socket in a temporary folder, stopped when the test
/// lets go of it.
final class TestBus: Sendable {
    let directory: URL
    private let bus: PrivateBus

    /// `config` names a file in Tests/Fixtures; nil is the session bus.
    init(config: String? = nil, serviceDirectory: URL? = nil, substitutions: [String: String] = [:]) throws {
        directory = Paths.temporaryDirectory("bgfetch-bus")
        var text = try config.map { try String(contentsOf: Paths.fixtures.appendingPathComponent($0), encoding: .utf8) }
            ?? SessionBusConfig.text
        for (placeholder, value) in substitutions { text = text.replacingOccurrences(of: placeholder, with: value) }
        if let serviceDirectory {
            text = text.replacingOccurrences(
                of: "</busconfig>", with: "  <servicedir>\(serviceDirectory.path)</servicedir>\n</busconfig>")
        }
        // Other users' clients must reach the socket.
        chmod(directory.path, 0o755)
        do {
            bus = try PrivateBus(
                kind: try TestBusImplementation.kind(), config: .text(text), in: directory.path,
                systemScope: text.contains("<type>system</type>"))
        } catch {
            // No deinit runs for a half-made bus: its folder goes here (the error quotes the log).
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    var address: String { bus.address }
    /// The bus's process: dbus-daemon, or dbus-broker-launch (which runs dbus-broker as its child).
    var pid: pid_t { bus.pid }
    /// The environment a client process needs to find this bus as its session bus.
    var environment: [String: String] { bus.environment }

    func connect() throws -> BusConnection { try bus.connect() }

    deinit { try? FileManager.default.removeItem(at: directory) }
}
