/// Whether the service lets an app fetch in the background:
/// `expo-background-fetch`'s numbers.
public enum FetchStatus: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The user switched background fetch off for this app (or for every app).
    case denied = 1
    /// The administrator's configuration restricts this app; the user cannot change it.
    case restricted = 2
    /// Background fetch works for this app.
    case available = 3

    public var description: String {
        switch self {
        case .denied: "Denied"
        case .restricted: "Restricted"
        case .available: "Available"
        }
    }
}

/// An app's answer to a fetch: `expo-background-fetch`'s numbers.
public enum FetchResult: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The fetch found nothing new.
    case noData = 1
    /// The fetch found new data.
    case newData = 2
    /// The fetch failed (a throwing handler, a cancelled or an expired
    /// fetch). The service backs off the task's next fetch.
    case failed = 3

    public var description: String {
        switch self {
        case .noData: "NoData"
        case .newData: "NewData"
        case .failed: "Failed"
        }
    }
}

/// What a task is doing now, as its info's `state` says.
public enum TaskState: String, Sendable, CaseIterable {
    /// Waiting for its next due time.
    case scheduled
    /// A fetch is outstanding.
    case running
    /// Due, but no connection of the app to deliver to.
    case pending
    /// Kept after a new boot without `startOnBoot`: waits for the app to register it again.
    case dormant
    /// The app is Denied or Restricted.
    case paused
}
