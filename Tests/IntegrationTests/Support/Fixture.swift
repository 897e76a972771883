import DBus
import Foundation
import TestKit

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

extension ServiceClient {
    /// A client on a test bus that keeps every signal of the service;
    /// `ownName` first takes a well-known name, which becomes the app id.
    convenience init(bus: TestBus, ownName: String? = nil) throws {
        try self.init(address: bus.address, name: ownName, threadName: "test-client", subscription: .everything)
    }
}
