/// Whether an app may fetch in the background (Expo's numbers).
public enum FetchStatus: UInt32, Sendable, CaseIterable {
    case denied = 1
    case restricted = 2
    case available = 3
}

/// An app's answer to a fetch (Expo's numbers).
public enum FetchResult: UInt32, Sendable, CaseIterable {
    case noData = 1
    case newData = 2
    case failed = 3
}

/// What a task is doing now, as `GetRegisteredTasks` reports it.
public enum TaskState: String, Sendable {
    /// Waiting for its next due time.
    case scheduled
    /// A fetch is outstanding.
    case running
    /// Due, but no connection of the app to deliver to.
    case pending
    /// After a new boot, waiting for its app to register it again.
    case dormant
    /// The app's status is not Available.
    case paused
}
