import BackgroundFetchContract

/// Whether the service lets the app fetch in the background: the same
/// numbers as `expo-background-fetch`'s `BackgroundFetchStatus` (`denied` 1,
/// `restricted` 2, `available` 3).
public typealias BackgroundFetchStatus = FetchStatus
