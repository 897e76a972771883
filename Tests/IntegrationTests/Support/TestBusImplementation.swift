import Foundation
import TestKit

/// The bus implementation the integration tests run on, chosen with the
/// environment variable `BGFETCH_TEST_BUS`: `dbus-daemon` (the default) or
/// `dbus-broker`. `make test` runs the suite once on each.
enum TestBusImplementation {
    static let variable = "BGFETCH_TEST_BUS"

    /// What the variable asks for; nil if it names neither implementation.
    static let selected: BusKind? = {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { return .dbusDaemon }
        return BusKind(rawValue: value)
    }()

    /// The selected kind, or an error that says what the variable holds.
    static func kind() throws -> BusKind {
        guard let selected else {
            throw HarnessError("\(variable)=\(ProcessInfo.processInfo.environment[variable] ?? ""): expected dbus-daemon or dbus-broker")
        }
        return selected
    }

    /// The suite runs on dbus-broker: for `.disabled(if:)` traits.
    static var isBroker: Bool { selected == .dbusBroker }
}
