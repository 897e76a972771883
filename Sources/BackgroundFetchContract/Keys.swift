/// The keys of `RegisterTask`'s options.
public enum RegisterOptionKey: String, Sendable, CaseIterable {
    case minimumInterval, stopOnTerminate, startOnBoot
}

/// The keys of a task's info (`GetRegisteredTasks`, `ListTasks`).
public enum TaskInfoKey: String, Sendable, CaseIterable {
    case minimumInterval, effectiveInterval, stopOnTerminate, startOnBoot, state, nextFetch, lastFetch, lastResult
    case fetchCount, failureCount
    /// `ListTasks` only: whose task it is.
    case uid
}
