import Foundation
import Glibc
import Synchronization

/// The clocks the bench and the stress suite read.
public enum Clocks {
    /// Monotonic nanoseconds, for durations.
    public static var nanos: UInt64 { read(CLOCK_MONOTONIC) }
    /// Monotonic seconds, for durations and deadlines.
    public static var now: Double { Double(nanos) / 1e9 }
    /// Unix time in microseconds: the daemon's clock for due times.
    public static var unixMicros: Int64 { Int64(read(CLOCK_REALTIME) / 1000) }
    /// CPU time of the calling thread, user and system, in nanoseconds.
    public static var threadCPUNanos: UInt64 { read(CLOCK_THREAD_CPUTIME_ID) }

    public static func seconds(since start: UInt64) -> Double { Double(nanos &- start) / 1e9 }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Nearest-rank percentiles of a sample: the one definition of the bench's
/// and the stress suite's figures.
public struct Sample: Sendable {
    public let sorted: [Double]

    public init(_ values: [Double]) { sorted = values.sorted() }

    public var count: Int { sorted.count }
    public var median: Double { percentile(50) }
    public var max: Double { sorted.last ?? 0 }
    public var min: Double { sorted.first ?? 0 }

    public func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[Swift.min(Swift.max(rank, 1), sorted.count) - 1]
    }
}

/// A value behind a lock, shareable by reference.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    public var value: Value { mutex.withLock { $0 } }
}

/// Writes a progress line at once, even when stdout is a pipe.
public func progress(_ line: String) {
    print(line)
    fflush(nil)
}
