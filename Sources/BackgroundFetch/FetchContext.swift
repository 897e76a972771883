/// What a task's handler gets for one fetch.
///
/// The handler runs in its own `Task`; when the deadline passes, or the
/// service says the fetch expired (`FetchExpired`), that task is cancelled.
/// Long work should check `Task.isCancelled` or use cancellable calls such as
/// `Task.sleep` and `URLSession` so it stops in time.
public struct FetchContext: Sendable {
    /// The task being fetched.
    public let taskName: String
    /// The service's id for this fetch.
    public let requestID: UInt64
    /// When the service stops waiting: the fetch's arrival plus the service's
    /// `FetchTimeout`.
    public let deadline: ContinuousClock.Instant

    public init(taskName: String, requestID: UInt64, deadline: ContinuousClock.Instant) {
        self.taskName = taskName
        self.requestID = requestID
        self.deadline = deadline
    }

    /// The time left before the deadline (negative once it has passed).
    public var timeRemaining: Duration { deadline - ContinuousClock.now }
}
