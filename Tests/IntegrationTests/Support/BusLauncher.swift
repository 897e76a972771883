import DBus
import Foundation
import Glibc
import TestKit

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
        case .dbusDaemon: return try DBusDaemon.launch(config: config, socket: socket, log: log)
        case .dbusBroker: return try startBroker(config: config, socket: socket, systemBus: systemBus, log: log)
        case nil:
            let value = ProcessInfo.processInfo.environment[TestBusImplementation.variable] ?? ""
            throw TestError("\(TestBusImplementation.variable)=\(value): expected dbus-daemon or dbus-broker")
        }
    }

    /// `dbus-broker-launch` started the way systemd starts it (TestKit's
    /// ``DBusBroker``), ready once a client gets through Hello.
    private static func startBroker(config: String, socket: String, systemBus: Bool, log: String) throws -> ChildProcess {
        do {
            return try DBusBroker.launch(config: config, socket: socket, systemScope: systemBus, log: log) { address in
                guard let probe = try? BusConnection.connect(.address(address), threadName: "broker-probe") else { return false }
                probe.close()
                return true
            }
        } catch {
            throw TestError("\(TestBusImplementation.variable)=dbus-broker: \(error)")
        }
    }
}
