/// A fetch's outcome, as the app answers it: the same numbers as
/// `expo-background-fetch`'s `BackgroundFetchResult`.
public enum BackgroundFetchResult: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The fetch found nothing new.
    case noData = 1
    /// The fetch found new data.
    case newData = 2
    /// The fetch failed (a throwing handler, a cancelled or an expired fetch).
    /// The service backs off the task's next fetch.
    case failed = 3

    public var description: String {
        switch self {
        case .noData: "NoData"
        case .newData: "NewData"
        case .failed: "Failed"
        }
    }
}
