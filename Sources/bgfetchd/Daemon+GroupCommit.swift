import BackgroundFetchCore
import DBus

extension Daemon {
    /// Everything dispatched in one turn of the loop shares one transaction:
    /// replies and signals wait in the round until it is committed, then go
    /// out together. Many clients' changes cost one sync to disk.
    func startRound() {
        guard !round.isOpen else { return }
        round.isOpen = true
        engine.beginRound()
    }

    func finishRound() {
        guard round.isOpen else { return }
        round.isOpen = false
        var failure: FetchError?
        do {
            try engine.commitRound()
        } catch {
            failure = error
            logger.error("a round of changes could not be stored; the state was reloaded", metadata: ["error": "\(error)"])
        }
        for item in round.take() {
            switch item {
            case .reply(let reply, let call, let durable):
                if durable, let failure {
                    if let error = call.makeErrorReply(failure.dbusError) { connection.send(error) }
                } else {
                    connection.send(reply)
                }
            case .signal(let signal):
                if failure == nil { connection.send(signal) }
            }
        }
    }
}

/// What waits for the round's commit before it may be sent.
struct DeliveryRound {
    enum Item {
        /// `durable`: the call changed stored state, so the reply waits for the commit.
        case reply(Message, to: Message, durable: Bool)
        case signal(Message)
    }

    var isOpen = false
    private var items: [Item] = []
    /// Callers with a reply waiting in this round.
    private var waitingCallers: Set<String> = []

    mutating func add(_ item: Item) {
        if case .reply(_, let call, _) = item, let sender = call.sender { waitingCallers.insert(sender) }
        items.append(item)
    }

    func isWaiting(for sender: String?) -> Bool {
        guard let sender, !waitingCallers.isEmpty else { return false }
        return waitingCallers.contains(sender)
    }

    mutating func take() -> [Item] {
        defer {
            items.removeAll(keepingCapacity: true)
            waitingCallers.removeAll(keepingCapacity: true)
        }
        return items
    }
}
