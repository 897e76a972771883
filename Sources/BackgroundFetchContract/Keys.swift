/// The keys of `RegisterTask`'s options.
public enum RegisterOptionKey: String, Sendable, CaseIterable {
    case minimumInterval, stopOnTerminate, startOnBoot
    case requiresNetwork, requiresUnmeteredNetwork, requiresExternalPower, requiresBatteryNotLow
    case adaptive, launch
}

/// The keys of a task's info (`GetRegisteredTasks`, `ListTasks`).
public enum TaskInfoKey: String, Sendable, CaseIterable {
    case minimumInterval, effectiveInterval, stopOnTerminate, startOnBoot, state, nextFetch, lastFetch, lastResult
    case fetchCount, failureCount
    case requiresNetwork, requiresUnmeteredNetwork, requiresExternalPower, requiresBatteryNotLow, adaptive, launch
    case reason, consecutiveFailures, consecutiveNoData
    /// `ListTasks` only: whose task it is.
    case uid
}

/// The keys of an app's info (`Manager.ListApps`).
public enum AppInfoKey: String, Sendable, CaseIterable {
    /// The app's own switch (`SetAppEnabled`); the `"*"` switch is not in it.
    case enabled
    /// The administrator restricts the app.
    case restricted
    /// The app's `SetMinimumInterval`, 0 if none.
    case minimumInterval
    case taskCount
}
