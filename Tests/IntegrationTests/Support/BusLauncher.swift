import Foundation
import Glibc
import ProcessKit

/// The one place that knows how to start a test bus on a socket path of the
/// test's choosing, with a dbus-daemon configuration file.
enum BusLauncher {
    /// Starts dbus-daemon listening at `socket` and returns once the socket
    /// is there. Its own output goes to `log`.
    static func start(config: String, socket: String, log: String) throws -> ChildProcess {
        try? FileManager.default.removeItem(atPath: socket)
        let process = try ChildProcess(
            "/usr/bin/dbus-daemon", ["--config-file=\(config)", "--address=unix:path=\(socket)", "--nofork", "--nosyslog"],
            stdout: log, stderr: log)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) {
            guard Date() < deadline, process.isRunning else {
                throw TestError("dbus-daemon did not start:\n\(contents(of: log))")
            }
            usleep(10_000)
        }
        return process
    }

    private static func contents(of path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
}
