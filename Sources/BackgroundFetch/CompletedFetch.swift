/// A fetch this process handled, as ``BackgroundFetchClient/completedFetches()`` reports it.
public struct CompletedFetch: Sendable, Hashable {
    public var taskName: String
    public var requestID: UInt64
    /// The result reported with `FinishFetch`: the handler's, or `.failed` when
    /// it threw, was cancelled, or no handler was defined for the task.
    public var result: BackgroundFetchResult
    /// The handler was cancelled: its deadline passed or the service expired the fetch.
    public var cancelled: Bool
    /// The service accepted the `FinishFetch`. False when the fetch had expired
    /// (the service already counted it as failed) or the answer was refused.
    public var acknowledged: Bool
    /// Why the service refused the answer, if it did.
    public var reportError: BackgroundFetchError?

    public init(
        taskName: String, requestID: UInt64, result: BackgroundFetchResult, cancelled: Bool, acknowledged: Bool,
        reportError: BackgroundFetchError? = nil
    ) {
        self.taskName = taskName
        self.requestID = requestID
        self.result = result
        self.cancelled = cancelled
        self.acknowledged = acknowledged
        self.reportError = reportError
    }
}
