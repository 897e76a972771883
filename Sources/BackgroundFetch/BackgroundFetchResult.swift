@_exported import BackgroundFetchContract

/// A fetch's outcome, as the app answers it: the same numbers as
/// `expo-background-fetch`'s `BackgroundFetchResult` (`noData` 1, `newData`
/// 2, `failed` 3). A failed fetch makes the service back off the task.
public typealias BackgroundFetchResult = FetchResult
