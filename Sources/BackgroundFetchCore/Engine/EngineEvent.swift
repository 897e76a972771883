/// Something the engine asks its host to say on the bus, after the change
/// behind it is stored.
public enum EngineEvent: Sendable, Equatable {
    /// Send `FetchRequested` to `destination` (a unique name).
    case fetchRequested(destination: String, task: TaskKey, requestID: UInt64)
    /// Start the app (the desktop way, or by bus activation and then
    /// `FetchRequested` to its name).
    case activateAndRequest(task: TaskKey, requestID: UInt64)
    /// Send `FetchExpired` to `destination`.
    case fetchExpired(destination: String, task: TaskKey, requestID: UInt64)
    /// Broadcast `FetchFinished` to monitors.
    case fetchFinished(task: TaskKey, requestID: UInt64, result: FetchResult)
}

extension EngineEvent {
    /// Whether the app must be started first.
    var isActivation: Bool {
        if case .activateAndRequest = self { return true }
        return false
    }
}

/// A change being built: what to store, and what to say once it is stored.
struct EngineChange {
    var batch = StoreBatch()
    var events: [EngineEvent] = []
    private var nextRequestID: UInt64

    init(nextRequestID: UInt64) {
        self.nextRequestID = nextRequestID
    }

    /// A request id never handed out before, even across restarts: the
    /// counter is stored with the change that uses it.
    mutating func allocateRequestID() -> UInt64 {
        let id = nextRequestID
        nextRequestID += 1
        batch.nextRequestID = nextRequestID
        return id
    }
}
