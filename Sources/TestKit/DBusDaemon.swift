import Foundation
import Glibc

/// A private `dbus-daemon`, for the tests and the stress suite: a
/// configuration file, a socket path of the caller's choosing.
public enum DBusDaemon {
    public static let executable = "/usr/bin/dbus-daemon"

    /// Starts it (`executable`, by default the system's) with the
    /// configuration file `config`, listening at `socket` (a stale one is
    /// replaced), and returns once it accepts connections. Its output goes to
    /// `log`, or nowhere.
    public static func launch(
        executable: String = executable, config: String, socket: String, log: String? = nil, timeout: TimeInterval = 10
    ) throws -> ChildProcess {
        unlink(socket)
        let process = try ChildProcess(
            executable, ["--config-file=\(config)", "--address=unix:path=\(socket)", "--nofork", "--nosyslog"],
            stdout: log, stderr: log)
        let deadline = Date().addingTimeInterval(timeout)
        while !UnixSocket.accepts(socket) {
            guard Date() < deadline, process.isRunning else {
                process.terminate()
                let output = log.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? ""
                throw HarnessError("dbus-daemon did not start (exit \(process.exitCode.map(String.init) ?? "-")):\n\(output)")
            }
            usleep(5_000)
        }
        return process
    }
}
