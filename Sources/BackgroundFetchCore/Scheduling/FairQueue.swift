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
public struct FairQueue<Client: Hashable, Item> {
    private var queues: [Client: Deque<Item>] = [:]
    private var newClients: Deque<Client> = []
    private var oldClients: Deque<Client> = []
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    /// How many items `client` has waiting.
    public func count(of client: Client) -> Int { queues[client]?.count ?? 0 }

    public mutating func enqueue(_ item: Item, from client: Client) {
        if queues[client] == nil {
            queues[client] = [item]
            newClients.append(client)
        } else {
            queues[client]!.append(item)
        }
        count += 1
    }

    /// The next item to serve and whose it is.
    public mutating func dequeue() -> (client: Client, item: Item)? {
        guard let client = newClients.popFirst() ?? oldClients.popFirst() else { return nil }
        let item = queues[client]!.removeFirst()
        count -= 1
        if queues[client]!.isEmpty {
            queues[client] = nil
        } else {
            oldClients.append(client)
        }
        return (client, item)
    }

    /// Takes every item `client` has waiting, in order.
    public mutating func removeAll(of client: Client) -> [Item] {
        guard let items = queues.removeValue(forKey: client) else { return [] }
        count -= items.count
        if let index = newClients.firstIndex(of: client) {
            newClients.remove(at: index)
        } else if let index = oldClients.firstIndex(of: client) {
            oldClients.remove(at: index)
        }
        return Array(items)
    }
}
