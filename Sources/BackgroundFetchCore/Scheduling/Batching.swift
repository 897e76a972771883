/// Chooses when to wake so that fetches due close together go out together.
///
/// A fetch may go out later than due by at most a tenth of its interval,
/// never earlier. Walking the fetches in due order, the wake-up moves from the
/// first due time to each later one as long as that is still inside the window
/// of every fetch taken so far; one wake-up then serves them all. A fetch with
/// nothing near it goes out on time.
public enum Batching {
    public struct Candidate: Sendable, Equatable {
        public var due: Int64
        public var interval: UInt32

        public init(due: Int64, interval: UInt32) {
            self.due = due
            self.interval = interval
        }

        /// The latest a fetch may go out.
        public var latest: Int64 { due + Int64.seconds(interval) / 10 }
    }

    /// The time to wake for the earliest candidates, or nil if there are none.
    public static func wakeTime(_ candidates: [Candidate]) -> Int64? {
        guard let first = candidates.min(by: { $0.due < $1.due }) else { return nil }
        // Only fetches due before the first one's window closes can join it.
        let near = candidates.filter { $0.due <= first.latest }.sorted { $0.due < $1.due }
        var wake = first.due
        var closes = first.latest
        for candidate in near.dropFirst() {
            guard candidate.due <= closes else { break }
            wake = candidate.due
            closes = min(closes, candidate.latest)
        }
        return wake
    }
}
