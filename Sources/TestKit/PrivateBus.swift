import DBus
import Foundation
import Glibc

/// The two bus implementations the tests, the bench and the stress suite run on.
public enum BusKind: String, Sendable, CaseIterable {
    case dbusDaemon = "dbus-daemon"
    case dbusBroker = "dbus-broker"
}

/// A private message bus on a socket in a folder of its own: dbus-daemon, or
/// dbus-broker started the way systemd starts it. The one way the tests, the
/// bench and the stress suite start a bus.
public final class PrivateBus: Sendable {
    /// A dbus-daemon configuration: its text, or a file that holds it.
    public enum Config: Sendable {
        case text(String)
        case file(String)
        /// The private session bus every suite uses.
        public static let session = Config.text(SessionBusConfig.text)
    }

    public let kind: BusKind
    public let directory: String
    public let socket: String
    public let process: ChildProcess
    private let ownsDirectory: Bool

    public var address: String { "unix:path=\(socket)" }
    /// What a client process needs to find this bus as its session bus.
    public var environment: [String: String] { ["DBUS_SESSION_BUS_ADDRESS": address] }
    public var pid: pid_t { process.pid }

    /// Starts a bus of `kind` with `config` in `directory` (a new temporary
    /// folder, removed with the bus, when nil), and returns once it serves.
    /// `systemScope` runs it as a system bus (broker: `--scope system`).
    public init(
        kind: BusKind = .dbusDaemon, config: Config = .session, in directory: String? = nil, systemScope: Bool = false,
        executable: String = DBusDaemon.executable
    ) throws {
        self.kind = kind
        ownsDirectory = directory == nil
        self.directory = try directory ?? Self.makeTemporaryDirectory("bgfetch-bus")
        socket = self.directory + "/bus"
        let configPath: String
        switch config {
        case .file(let path): configPath = path
        case .text(let text):
            configPath = self.directory + "/bus.conf"
            try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        }
        do {
            process = try Self.start(
                kind, config: configPath, socket: socket, systemScope: systemScope, log: self.directory + "/bus.log",
                executable: executable)
        } catch {
            if ownsDirectory { try? FileManager.default.removeItem(atPath: self.directory) }
            throw error
        }
    }

    /// Starts a bus of `kind` at `socket` and returns its process once it
    /// serves: for a caller that restarts a bus at the same address.
    public static func start(
        _ kind: BusKind, config: String, socket: String, systemScope: Bool = false, log: String,
        executable: String = DBusDaemon.executable
    ) throws -> ChildProcess {
        switch kind {
        case .dbusDaemon:
            return try DBusDaemon.launch(executable: executable, config: config, socket: socket, log: log)
        case .dbusBroker:
            // The broker's socket is there from the start: a client that gets through Hello says it serves.
            return try DBusBroker.launch(config: config, socket: socket, systemScope: systemScope, log: log) { address in
                guard let probe = try? BusConnection.connect(.address(address), threadName: "broker-probe") else { return false }
                probe.close()
                return true
            }
        }
    }

    /// The process that serves the bus: dbus-daemon itself, or the broker
    /// its launcher started.
    public var servingPID: pid_t {
        guard kind == .dbusBroker,
            let text = try? String(contentsOfFile: "/proc/\(process.pid)/task/\(process.pid)/children", encoding: .utf8),
            let child = text.split(separator: " ").first.flatMap({ pid_t($0) })
        else { return process.pid }
        return child
    }

    public func connect(threadName: String = "test-client") throws -> BusConnection {
        try BusConnection.connect(.address(address), threadName: threadName)
    }

    /// Stops the bus (its clients see it go).
    public func stop(timeout: TimeInterval = 5) {
        process.terminate(SIGTERM)
        if process.wait(timeout: timeout) == nil { process.terminate(SIGKILL) }
    }

    deinit {
        process.terminate(SIGTERM)
        if ownsDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// A new folder in `parent` (by default the system's temporary folder).
    public static func makeTemporaryDirectory(_ prefix: String, in parent: String = NSTemporaryDirectory()) throws -> String {
        var template = Array(((parent as NSString).appendingPathComponent("\(prefix)-XXXXXX")).utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!).map { String(cString: $0) } }
        guard let made else { throw HarnessError("cannot make a temporary folder: \(String(cString: strerror(errno)))") }
        return made
    }
}
