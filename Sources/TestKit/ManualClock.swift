import BackgroundFetchCore
import Synchronization

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
