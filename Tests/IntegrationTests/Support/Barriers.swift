import Foundation
import TestKit

// What the tests use instead of sleeping: TestKit's `pollUntil` and
// `eventually`, and, for "this never arrives", a barrier: something that
// must arrive *after* the unwanted message if that were ever sent. The bus keeps the order of the messages
// from one sender to one receiver, so once the barrier is in, anything sent
// before it is in too, and its absence is a result rather than a guess.

/// A scripted client of the service (dbus-python) running in the background,
/// as another user if asked: it listens to every signal of the service and,
/// with `["until", MEMBER, VALUE, SECONDS]`, runs until a barrier signal comes
/// rather than for a fixed time.
///
/// The operations are those of `Tests/Fixtures/bus_client.py`: `ready`
/// prints `READY`, which ``waitUntilReady(timeout:)`` waits for (put it after
/// a call: a blocking call is a round trip through the bus, so the match
/// rules asked for before it are in place).
///
/// The results, one per operation, are the last line of its output.
final class ScriptedClient: Sendable {
    private let process: BackgroundProcess
    private let name: String

    init(_ name: String, as user: TestUsers.User?, bus: TestBus, _ operations: [[Any]]) throws {
        self.name = name
        let json = String(decoding: try JSONSerialization.data(withJSONObject: operations), as: UTF8.self)
        let command = ["/usr/bin/python3", Paths.fixtures.appendingPathComponent("bus_client.py").path, bus.address, json]
        let asUser = user.map { ["/usr/bin/setpriv", "--reuid=\($0.uid)", "--regid=\($0.gid)", "--clear-groups"] } ?? []
        let argv = asUser + command
        process = try BackgroundProcess(argv[0], Array(argv.dropFirst()))
    }

    /// Its output and its error output, for failure messages.
    private var transcript: String { "stdout: \(process.stdout)\nstderr: \(process.stderr)" }

    /// Waits until it printed `READY` (it fails at once if the client ended first).
    func waitUntilReady(timeout: TimeInterval = 20) throws {
        try pollUntil("\(name) to be ready", timeout: timeout) { () throws -> Bool? in
            if process.stdout.split(whereSeparator: \.isNewline).contains("READY") { return true }
            if !process.isRunning { throw HarnessError("\(name) ended before it was ready (exit \(process.exitCode ?? -1)):\n\(transcript)") }
            return nil
        }
    }

    /// Waits for it to end (with status 0) and returns its results, one per operation.
    func results(timeout: TimeInterval = 30) throws -> [Any] {
        guard let status = process.wait(timeout: timeout) else { throw HarnessError("\(name) still runs after \(timeout) s:\n\(transcript)") }
        guard status == 0, let last = process.stdout.split(whereSeparator: \.isNewline).last,
            let list = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [Any]
        else { throw HarnessError("\(name) failed (exit \(status)):\n\(transcript)") }
        return list
    }
}
