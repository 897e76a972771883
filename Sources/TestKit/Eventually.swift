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
@discardableResult
public func eventually<T>(_ what: String, timeout: Duration = .seconds(10), _ probe: () throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try probe() { return value }
        guard ContinuousClock.now < deadline else { throw HarnessError("timed out after \(timeout) waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
