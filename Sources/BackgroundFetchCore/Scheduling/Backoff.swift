import Foundation

/// How long after a fetch the next one is due.
///
/// A success keeps the interval. Each Failed or expired fetch in a row doubles
/// it, at most five times (32×) and to at most one day; an interval of a day
/// or more is not backed off, and no delay is ever shorter than the interval.
public enum Backoff {
    public static let maximumDoublings: UInt32 = 5
    public static let cap: Int64 = 86_400_000_000

    public static func delay(interval: UInt32, consecutiveFailures: UInt32) -> Int64 {
        let base = Int64.seconds(interval)
        guard consecutiveFailures > 0 else { return base }
        let doubled = base << Int64(min(consecutiveFailures, maximumDoublings))
        return max(base, min(doubled, cap))
    }
}

/// How far NoData answers in a row stretch an adaptive task's interval.
///
/// ×1.5 per NoData in a row, at most 4× the interval and at most one day,
/// never less than the interval; a NewData answer ends the stretch.
public enum Stretch {
    public static let factor = 1.5
    public static let maximumFactor = 4.0
    public static let cap: Int64 = 86_400_000_000

    public static func delay(interval: UInt32, consecutiveNoData: UInt32) -> Int64 {
        let base = Int64.seconds(interval)
        guard consecutiveNoData > 0 else { return base }
        let factor = min(Foundation.pow(factor, Double(min(consecutiveNoData, 64))), maximumFactor)
        let stretched = Int64((Double(base) * factor).rounded())
        return max(base, min(stretched, cap))
    }
}
