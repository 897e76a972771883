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
    /// Due, but held back by an unmet constraint, power saving or sleep
    /// (the info's `reason` says which).
    case waiting
    /// Kept after a new boot without `startOnBoot`: waits for the app to register it again.
    case dormant
    /// The app is Denied or Restricted.
    case paused
}

/// Why a task's next fetch is when it is: the info's `reason`.
public enum TaskReason: String, Sendable, CaseIterable {
    /// One effective interval after the last fetch or the registration.
    case interval
    /// Stretched by NoData answers in a row.
    case noNewData = "no-new-data"
    /// Backed off after failed or expired fetches.
    case backoff
    /// Moved later, within its window, to share a wake-up.
    case batched
    /// Missed while the daemon was down or the machine slept: fires once, soon.
    case catchUp = "catch-up"
    /// Waits for the machine to be online (NetworkManager).
    case network
    /// Waits for a network that is not metered (NetworkManager).
    case unmeteredNetwork = "unmetered-network"
    /// Waits for mains power (UPower).
    case externalPower = "external-power"
    /// Waits for the battery to leave its low level (UPower).
    case batteryLow = "battery-low"
    /// Waits while power-profiles-daemon's profile is power-saver.
    case powerSaver = "power-saver"
    /// Fell due while the machine prepared to sleep or slept (logind).
    case suspended
    /// A fetch is outstanding.
    case running
    /// Due, with no connection of the app to deliver to.
    case pending
    /// Waits for its app to register it again after a new boot.
    case dormant
    /// The app is Denied or Restricted.
    case paused
}

/// Whether a due fetch may start an app that is not running (`launch`).
public enum LaunchPolicy: String, Sendable, CaseIterable {
    /// Start it: by its desktop entry's `ActivateAction`, or by bus activation.
    case activate
    /// Keep the fetch pending until the app registers the task again.
    case never
}
