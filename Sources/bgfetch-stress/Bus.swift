import DBus
import Foundation
import TestKit
import Glibc

/// A private bus on a socket in a temporary folder: `dbus-daemon`, or
/// `dbus-broker` when the settings ask for it.
final class StressBus: @unchecked Sendable {
    enum Kind: String, Sendable { case dbusDaemon = "dbus-daemon", dbusBroker = "dbus-broker" }

    let directory: String
    let address: String
    let kind: Kind
    private let process: Child

    convenience init(_ settings: Settings) throws {
        try self.init(config: BusConfig.path(), kind: settings.bus)
    }

    init(config: String, kind: Kind = .dbusDaemon) throws {
        directory = makeTemporaryDirectory("bgfetch-stress-bus")
        let socket = directory + "/bus"
        address = "unix:path=\(socket)"
        self.kind = kind
        switch kind {
        case .dbusDaemon:
            process = try DBusDaemon.launch(config: config, socket: socket, log: directory + "/dbus-daemon.log")
        case .dbusBroker:
            process = try DBusBroker.launch(config: config, socket: socket, log: directory + "/broker.log") { address in
                guard let probe = try? BusConnection.connect(.address(address), threadName: "broker-probe") else { return false }
                probe.close()
                return true
            }
        }
    }

    var pid: pid_t { process.pid }

    /// The process that serves the bus: dbus-daemon itself, or the broker the launcher started.
    var servingPID: pid_t {
        guard kind == .dbusBroker,
            let text = try? String(contentsOfFile: "/proc/\(process.pid)/task/\(process.pid)/children", encoding: .utf8),
            let child = text.split(separator: " ").first.flatMap({ pid_t($0) })
        else { return process.pid }
        return child
    }

    func connect(_ label: String = "stress") throws -> BusConnection {
        do {
            return try BusConnection.connect(.address(address), threadName: label)
        } catch {
            throw StressError("cannot connect to the test bus: \(error)")
        }
    }

    deinit {
        process.terminate(SIGTERM)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

func makeTemporaryDirectory(_ prefix: String) -> String {
    var template = Array((NSTemporaryDirectory() + "\(prefix)-XXXXXX").utf8CString)
    return template.withUnsafeMutableBufferPointer { buffer in
        guard let result = mkdtemp(buffer.baseAddress!) else { return NSTemporaryDirectory() + prefix }
        return String(cString: result)
    }
}

/// The bus configuration the integration tests use, found from this file's place
/// in the package (or written out from a copy when the package is not there).
enum BusConfig {
    static let fixture: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent("Tests/Fixtures/session-bus.conf").path
    }()

    static func path() -> String {
        if FileManager.default.fileExists(atPath: fixture) { return fixture }
        let path = NSTemporaryDirectory() + "bgfetch-stress-session-bus-\(getpid()).conf"
        try? SessionBusConfig.text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

}
