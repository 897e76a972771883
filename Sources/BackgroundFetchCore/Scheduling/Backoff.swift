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
