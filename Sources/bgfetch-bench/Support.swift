import Foundation
import TestKit
import Glibc
import Synchronization

/// The two clocks the bench reads.
enum Clock {
    /// Monotonic nanoseconds, for durations.
    static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Unix time in microseconds: the daemon's clock for due times.
    static func unixMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// CPU time of the calling thread, user and system, in nanoseconds.
    static func threadCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func seconds(since start: UInt64) -> Double { Double(nanos() &- start) / 1e9 }

    static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&ts, &remaining) != 0 && errno == EINTR { ts = remaining }
    }
}

/// A value handed from a connection's thread to the thread that waits for it.
final class Handoff<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    func put(_ newValue: Value) {
        value.withLock { $0 = newValue }
        ready.signal()
    }

    func take() -> Value {
        ready.wait()
        return value.withLock { $0! }
    }
}

/// Nearest-rank percentiles of a sample.
struct Sample {
    let sorted: [Double]

    init(_ values: [Double]) { sorted = values.sorted() }

    var count: Int { sorted.count }
    var median: Double { percentile(50) }
    var max: Double { sorted.last ?? 0 }
    var min: Double { sorted.first ?? 0 }

    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[Swift.min(Swift.max(rank, 1), sorted.count) - 1]
    }
}

/// Number formatting for the table.
enum Format {
    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

    /// 12,345 — thousands separated, as the issue writes them.
    static func count(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, char) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(char)
        }
        return (value < 0 ? "-" : "") + out
    }

    static func rate(_ perSecond: Double) -> String { count(Int(perSecond.rounded())) + "/s" }
    static func micros(_ value: Double) -> String { fixed(value, 1) + " µs" }
    static func millis(_ value: Double) -> String { fixed(value, value < 10 ? 2 : 1) + " ms" }
    static func mebibytes(_ kib: Int) -> String { fixed(Double(kib) / 1024, 1) + " MiB" }
}

/// Writes a progress line at once, even when stdout is a pipe.
func progress(_ line: String) {
    print(line)
    fflush(nil)
}
