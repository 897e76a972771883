import Glibc
import Synchronization

/// The time the service reads: Unix time in microseconds.
///
/// The scheduler takes it as a parameter so tests move time by hand.
public protocol WallClock: Sendable {
    func now() -> Int64
}

/// The machine's real-time clock.
public struct SystemClock: WallClock {
    public init() {}

    public func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}

extension Int64 {
    /// Seconds as microseconds.
    static func seconds(_ s: UInt32) -> Int64 { Int64(s) * 1_000_000 }
}
