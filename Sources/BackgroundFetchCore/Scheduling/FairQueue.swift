import DequeModule

/// Work waiting to be served, one first-in-first-out queue per client, served
/// so that no client can make the others wait behind its backlog.
///
/// The rule is fq_codel's (RFC 8290) with a quantum of one item: a client
/// with nothing queued whose item comes is *new* and is served before the
/// clients with a backlog (*old*); after one item a new client joins the
/// end of the old ones, even with nothing left, and old clients are served
/// one item each, in turn, until one found empty at its turn leaves. A client
/// that asks one thing at a time is therefore served next, or at worst after
/// one item of each backlogged client, however many items a flooding client
/// has waiting; and a stream of such clients cannot starve the backlogged
/// ones, as each is new at most once per round. Each client's own items keep
/// their order.
///
/// Inlinable, so the daemon's use of it is specialised for its types: served
/// generically, every call paid for dictionary and deque witness tables.
public struct FairQueue<Client: Hashable, Item> {
    @usableFromInline var queues: [Client: Deque<Item>] = [:]
    @usableFromInline var newClients: Deque<Client> = []
    @usableFromInline var oldClients: Deque<Client> = []
    /// How many items wait, over all clients.
    @inlinable public var count: Int { total }
    @usableFromInline var total = 0

    @inlinable public init() {}

    @inlinable public var isEmpty: Bool { total == 0 }

    /// How many items `client` has waiting.
    @inlinable public func count(of client: Client) -> Int { queues[client]?.count ?? 0 }

    @inlinable public mutating func enqueue(_ item: Item, from client: Client) {
        // One lookup: the queue is made in place when the client has none.
        var isNew = false
        queues[client, default: { isNew = true; return Deque() }()].append(item)
        if isNew { newClients.append(client) }
        total += 1
    }

    /// The next item to serve and whose it is.
    @inlinable public mutating func dequeue() -> (client: Client, item: Item)? {
        if let client = newClients.popFirst() {
            oldClients.append(client)
            return (client, take(from: client))
        }
        while let client = oldClients.popFirst() {
            guard !queues[client]!.isEmpty else {
                queues[client] = nil  // its turn came with nothing queued: it leaves
                continue
            }
            oldClients.append(client)
            return (client, take(from: client))
        }
        return nil
    }

    @inlinable mutating func take(from client: Client) -> Item {
        total -= 1
        return queues[client]!.removeFirst()
    }

    /// Takes every item `client` has waiting, in order.
    @inlinable public mutating func removeAll(of client: Client) -> [Item] {
        guard let items = queues.removeValue(forKey: client) else { return [] }
        total -= items.count
        if let index = newClients.firstIndex(of: client) {
            newClients.remove(at: index)
        } else if let index = oldClients.firstIndex(of: client) {
            oldClients.remove(at: index)
        }
        return Array(items)
    }
}
