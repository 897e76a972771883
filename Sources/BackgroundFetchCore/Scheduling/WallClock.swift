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

/// A clock that moves only when told to.
public final class ManualClock: WallClock {
    private let current: Mutex<Int64>

    public init(startingAt microseconds: Int64 = 1_700_000_000_000_000) {
        current = Mutex(microseconds)
    }

    public func now() -> Int64 { current.withLock { $0 } }

    public func advance(bySeconds seconds: Double) {
        current.withLock { $0 += Int64(seconds * 1_000_000) }
    }

    public func set(_ microseconds: Int64) {
        current.withLock { $0 = microseconds }
    }
}

extension Int64 {
    /// Seconds as microseconds.
    static func seconds(_ s: UInt32) -> Int64 { Int64(s) * 1_000_000 }
}
