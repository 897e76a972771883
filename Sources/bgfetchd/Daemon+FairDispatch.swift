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
///
/// Queries (methods declared `query:`, which store nothing and cost the same
/// whatever the state: `GetStatus`, `IsTaskRegistered`, `GetAppStatus`) are
/// answered as soon as they are read when their caller has nothing queued, as
/// libdbus answers `Peer.Ping`: they cannot overtake their caller's own
/// calls, and their reply still waits behind that caller's replies held for
/// a commit. What they overtake is other callers' queued calls, by at most
/// one turn's reading (``EventLoop``: 16 reads of about 4 KiB, at most 1,024
/// messages): a flood of queries costs the others what a flood of Pings, which
/// no server on libdbus can queue, already does, a few milliseconds a turn.
extension Daemon {
    /// Calls served between two looks at the socket (and two commits).
    static let callsPerSlice = 16
    /// Calls one connection may have waiting; more are refused at once (the
    /// refusal may overtake the replies to its earlier, still waiting calls),
    /// so a flood costs the daemon bounded memory.
    static let queuedCallsPerConnection = 1024

    /// Whether `method`, called by `sender`, is answered as it is read.
    func answersAtOnce(_ method: ObjectServer.Found, from sender: String) -> Bool {
        method.isQuery && calls.count(of: sender) == 0
    }

    /// Answers a query as it is read. It stores nothing, so it opens no
    /// round; its reply waits only behind its caller's replies held for the
    /// round's commit, if any.
    func answerQuery(_ message: Message, calling method: ObjectServer.Found) {
        let (reply, wrote) = engine.trackingWrites { server.reply(to: message, calling: method) }
        assert(!wrote, "a method declared a query stored a change")
        guard let reply else { return }
        noteIfRefused(reply, message)
        if round.isWaiting(for: message.sender) {
            round.add(.reply(reply, to: message, durable: false))
        } else {
            connection.send(reply)
        }
    }

    func serveCalls() {
        for _ in 0..<Self.callsPerSlice {
            guard let (_, call) = calls.dequeue() else { return }
            dispatch(call.message, calling: call.method)
        }
    }

    /// A call waiting for its turn, with the declared method the object
    /// server found it names (nil: it is routed when served), so that it is
    /// routed once.
    struct QueuedCall {
        let message: Message
        let method: ObjectServer.Found?
        init(_ message: Message, _ method: ObjectServer.Found?) {
            self.message = message
            self.method = method
        }
    }

    /// Refuses `call` at once; a call that asked for no reply gets none.
    func refuse(_ call: Message, _ error: FetchError) {
        if call.expectsReply, let reply = call.makeErrorReply(error.dbusError) { connection.send(reply) }
    }

    static let tooManyWaiting = FetchError(
        .limitExceeded, "more than \(queuedCallsPerConnection) calls from this connection are waiting to be served")
}
