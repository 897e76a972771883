import BackgroundFetchCore
import DBus

/// Calls are served in turns, fairly between connections: an app that
/// floods the daemon waits behind its own backlog, not everyone else.
///
/// Each turn of the loop reads everything the socket holds and queues each
/// call under its sender (``FairQueue``); the idle handler then serves a
/// slice of them, commits the slice's changes and, if calls are left, asks
/// the loop for another turn at once. A connection that asks one thing at a
/// time is served within the next slice whatever the others have queued.
extension Daemon {
    /// Calls served between two looks at the socket (and two commits).
    static let callsPerSlice = 16
    /// Calls one connection may have waiting; more are refused at once (the
    /// refusal may overtake the replies to its earlier, still waiting calls),
    /// so a flood costs the daemon bounded memory.
    static let queuedCallsPerConnection = 1024

    func serveCalls() {
        for _ in 0..<Self.callsPerSlice {
            guard let (_, call) = calls.dequeue() else { return }
            dispatch(call)
        }
    }

    /// Refuses `call` at once; a call that asked for no reply gets none.
    func refuse(_ call: Message, _ error: FetchError) {
        if call.expectsReply, let reply = call.makeErrorReply(error.dbusError) { connection.send(reply) }
    }

    static let tooManyWaiting = FetchError(
        .limitExceeded, "more than \(queuedCallsPerConnection) calls from this connection are waiting to be served")
}
