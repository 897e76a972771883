import Foundation

// Waiting for an effect that crosses processes, without a fixed sleep: the
// wait ends as soon as the effect is there and fails at a deadline.

/// Polls `probe` (every `interval` seconds) until it gives a value and
/// returns it; throws after `timeout`. Blocks the calling thread between
/// polls: for tests that are not async, the bench and the stress suite.
@discardableResult
public func pollUntil<T>(
    _ what: String, timeout: TimeInterval = 10, every interval: TimeInterval = 0.005, _ probe: () throws -> T?
) throws -> T {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if let value = try probe() { return value }
        guard Date() < deadline else { throw HarnessError("timed out after \(timeout) s waiting for \(what)") }
        usleep(UInt32(interval * 1e6))
    }
}

/// Polls `probe` until it gives a value, without blocking a thread of the
/// concurrency pool in between; throws after `timeout`.
///
/// What an async test waits for is often another task's work (a client
/// library's own), and the pool has as many threads as cores: on two cores,
/// tests blocking in synchronous waits can hold both for seconds. So the
/// default deadline is generous; it bounds a hang and decides nothing in a
/// run that passes.
@discardableResult
public func eventually<T>(_ what: String, timeout: Duration = .seconds(30), _ probe: () throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try probe() { return value }
        guard ContinuousClock.now < deadline else { throw HarnessError("timed out after \(timeout) waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
