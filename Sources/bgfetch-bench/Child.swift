import Foundation
import Glibc
import TestKit

/// A child of the bench: TestKit's, with its output (stdout and stderr)
/// appended to one file and a name for progress lines.
final class Child: Sendable {
    let process: ChildProcess
    let name: String
    var pid: pid_t { process.pid }

    /// Starts `executable`; its stdout and stderr are appended to `output`.
    /// `environment` is added to the bench's own.
    init(_ executable: String, _ arguments: [String], output: String, environment: [String: String] = [:]) throws(HarnessError) {
        name = (executable as NSString).lastPathComponent
        do {
            let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process = try ChildProcess(executable, arguments, environment: merged, stdout: output, stderr: output)
        } catch {
            throw HarnessError("\(error)")
        }
    }

    /// Takes over a process TestKit started.
    init(wrapping process: ChildProcess) {
        self.process = process
        name = (process.executable as NSString).lastPathComponent
    }

    var isRunning: Bool { process.isRunning }

    /// The exit status, or 128 + the signal that ended it; nil while it runs.
    var exitCode: Int32? { process.exitCode }

    /// Waits at most `timeout` seconds for it to end; its exit code, or nil.
    @discardableResult
    func wait(timeout: Double) -> Int32? { process.wait(timeout: timeout) }

    /// Sends `signal`, waits, and kills it if it is still there after `timeout`.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM, timeout: Double = 15) -> Int32? {
        guard isRunning else { return exitCode }
        process.signal(signal)
        if let code = wait(timeout: timeout) { return code }
        process.signal(SIGKILL)
        return wait(timeout: 10)
    }
}
