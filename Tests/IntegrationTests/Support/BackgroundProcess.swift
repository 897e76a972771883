import Foundation
import TestKit
import Glibc

/// A process the test starts and keeps running while it does other things;
/// its output goes to files the test can read at any time. Killed if still
/// running when the test lets go of it.
final class BackgroundProcess: Sendable {
    private let process: ChildProcess
    private let name: String
    private let directory = Paths.temporaryDirectory("bgproc")
    private let outURL: URL
    private let errURL: URL

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        outURL = directory.appendingPathComponent("out")
        errURL = directory.appendingPathComponent("err")
        name = URL(fileURLWithPath: executable).lastPathComponent
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process = try ChildProcess(executable, arguments, environment: env, stdout: outURL.path, stderr: errURL.path)
    }

    var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }
    var isRunning: Bool { process.isRunning }
    var exitCode: Int32? { process.exitCode }
    /// Its exit status once it ended, waiting at most `timeout` seconds (blocking); nil if it still runs.
    func wait(timeout: TimeInterval) -> Int32? { process.wait(timeout: timeout) }

    /// Waits until stderr (or stdout) contains `text`.
    func waitForOutput(_ text: String, inStderr: Bool = true, timeout: Duration = .seconds(10)) async throws {
        try await eventually("'\(text)' in the output of \(name)", timeout: timeout) {
            (inStderr ? stderr : stdout).contains(text) ? true : nil
        }
    }

    /// Waits for the process to end and returns its exit status (128 + the
    /// signal if a signal ended it).
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(15)) async throws -> Int32 {
        do {
            try await eventually("the exit of \(name)", timeout: timeout) { process.isRunning ? nil : true }
        } catch {
            throw HarnessError("\(error)\nstdout: \(stdout)\nstderr: \(stderr)")
        }
        return process.exitCode ?? -1
    }

    func send(_ signal: Int32) { process.signal(signal) }

    deinit {
        process.terminate()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Collects what an `AsyncStream` yields, for a test to wait on.
final class StreamRecorder<Element: Sendable>: Sendable {
    private let box = Locked<[Element]>([])
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<Element>) {
        task = Task { [box] in for await item in stream { box.withLock { $0.append(item) } } }
    }

    var items: [Element] { box.value }

    /// Waits until `count` elements came and returns them all.
    func wait(count: Int = 1, timeout: Duration = .seconds(30)) async throws -> [Element] {
        try await eventually("\(count) element(s) from a stream", timeout: timeout) {
            let items = self.items
            return items.count >= count ? items : nil
        }
    }

    deinit { task.cancel() }
}

extension Paths {
    static var swiftExample: String { products.appendingPathComponent("bgfetch-example").path }
    static var examples: URL { packageRoot.appendingPathComponent("Examples") }
    static var pythonExample: String { examples.appendingPathComponent("python/fetcher.py").path }
    static var desktopExample: String { examples.appendingPathComponent("python/desktop_fetcher.py").path }
    static var shellWalkthrough: String { examples.appendingPathComponent("shell/walkthrough.sh").path }
}
