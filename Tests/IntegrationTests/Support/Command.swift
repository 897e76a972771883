import Foundation
import TestKit

/// The outcome of running a command to its end.
struct CommandResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

enum Command {
    /// The full path of a program on PATH.
    static func which(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw HarnessError("\(name) is not on PATH")
    }

    /// Runs `executable` with `arguments`, waits at most `timeout` seconds
    /// (then kills it), and returns its exit status and output.
    @discardableResult
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil,
        timeout: TimeInterval = 30
    ) throws -> CommandResult {
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let directory = Paths.temporaryDirectory("cmd")
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("out"), errURL = directory.appendingPathComponent("err")
        var inPath: String?
        if let stdin {
            let inURL = directory.appendingPathComponent("in")
            try stdin.write(to: inURL, atomically: true, encoding: .utf8)
            inPath = inURL.path
        }
        let path = executable.hasPrefix("/") ? executable : try which(executable)
        let process = try ChildProcess(path, arguments, environment: env, stdin: inPath, stdout: outURL.path, stderr: errURL.path)
        let status = process.wait(timeout: timeout)
        process.terminate()
        return CommandResult(
            status: status ?? -1,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// The same, waited for on a thread of its own, for commands that run
    /// for long: a test waiting in ``run(_:_:environment:stdin:timeout:)``
    /// holds one of the threads that run every test's async work, as many as
    /// there are cores (two here), and tasks of other tests (a client
    /// library's own, say) stall behind it.
    @discardableResult
    static func runOffThePool(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil,
        timeout: TimeInterval = 30
    ) async throws -> CommandResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result { try run(executable, arguments, environment: environment, stdin: stdin, timeout: timeout) })
            }.start()
        }
    }
}
