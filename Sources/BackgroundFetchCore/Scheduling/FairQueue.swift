import DequeModule

/// Work waiting to be served, one first-in-first-out queue per client, served
/// so that no client can make the others wait behind its backlog.
///
/// The rule is fq_codel's (RFC 8290) with a quantum of one item: a client
/// whose queue was empty when its item came is *new* and is served before the
/// clients that have a backlog (*old*); old clients are served one item each,
/// in turn. A client that asks one thing at a time is therefore served next,
/// however many items a flooding client has waiting; the flooders share what
/// is left equally. Each client's own items keep their order.
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
        if queues[client] == nil {
            queues[client] = [item]
            newClients.append(client)
        } else {
            queues[client]!.append(item)
        }
        total += 1
    }

    /// The next item to serve and whose it is.
    @inlinable public mutating func dequeue() -> (client: Client, item: Item)? {
        guard let client = newClients.popFirst() ?? oldClients.popFirst() else { return nil }
        let item = queues[client]!.removeFirst()
        total -= 1
        if queues[client]!.isEmpty {
            queues[client] = nil
        } else {
            oldClients.append(client)
        }
        return (client, item)
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
