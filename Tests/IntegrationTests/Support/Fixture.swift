import DBus
import Foundation

/// A private bus, a running bgfetchd on it, and one client app.
final class Fixture: Sendable {
    let bus: TestBus
    let daemon: DaemonProcess
    let client: ServiceClient

    /// The app id the default client takes (by owning this bus name).
    static let appID = "org.example.Mail"

    init(_ arguments: [String] = ["--minimum-interval-floor", "1"], configFile: String? = nil) throws {
        bus = try TestBus()
        var arguments = arguments
        if let configFile {
            let path = bus.directory.appendingPathComponent("bgfetchd.conf")
            try configFile.write(to: path, atomically: true, encoding: .utf8)
            arguments += ["--config", path.path]
        }
        daemon = try DaemonProcess(bus: bus, arguments: arguments)
        try daemon.start()
        client = try ServiceClient(bus: bus, ownName: Self.appID)
    }

    /// Another app on the same bus.
    func app(_ name: String) throws -> ServiceClient { try ServiceClient(bus: bus, ownName: name) }

    /// Runs a command with this bus as the session bus.
    func run(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> CommandResult {
        try Command.run(executable, arguments, environment: bus.environment, stdin: stdin)
    }

    deinit { client.close() }
}

extension Dictionary where Key == String, Value == DBusValue {
    static func options(interval: UInt32? = nil, stopOnTerminate: Bool? = nil, startOnBoot: Bool? = nil) -> [String: DBusValue] {
        var options: [String: DBusValue] = [:]
        if let interval { options["minimumInterval"] = .uint32(interval) }
        if let stopOnTerminate { options["stopOnTerminate"] = .bool(stopOnTerminate) }
        if let startOnBoot { options["startOnBoot"] = .bool(startOnBoot) }
        return options
    }
}
