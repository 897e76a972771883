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
/// A client is looked up once, when its item comes: its queue lives in a
/// numbered slot, and the turns are kept as slot numbers, so serving hashes
/// nothing. A slot a client leaves keeps its storage for the next one, so a
/// client coming back each turn allocates nothing; storage grown by a
/// backlog of more than ``keptItems`` is given back when its client leaves.
/// Inlinable, so the daemon's use of it is specialised for its types: served
/// generically, every call paid for dictionary and deque witness tables.
public struct FairQueue<Client: Hashable, Item> {
    /// A slot: its client (nil while free) and that client's items.
    @usableFromInline struct Backlog {
        @usableFromInline var client: Client?
        @usableFromInline var items: Deque<Item> = []
        /// The most items it held since its storage was last made.
        @usableFromInline var peak = 0
        @inlinable init(_ client: Client) { self.client = client }
    }

    /// Items a freed slot keeps room for; a larger backlog's storage is freed with it.
    @inlinable static var keptItems: Int { 64 }

    /// The slot of each client with a queue (items waiting, or a turn still due).
    @usableFromInline var slots: [Client: Int] = [:]
    @usableFromInline var backlogs: [Backlog] = []
    @usableFromInline var freeSlots: [Int] = []
    @usableFromInline var newClients: Deque<Int> = []
    @usableFromInline var oldClients: Deque<Int> = []
    @usableFromInline var total = 0

    @inlinable public init() {}

    /// How many items wait, over all clients.
    @inlinable public var count: Int { total }

    @inlinable public var isEmpty: Bool { total == 0 }

    /// How many items `client` has waiting (an empty queue hashes nothing).
    @inlinable public func count(of client: Client) -> Int {
        guard total > 0 else { return 0 }
        return slots[client].map { backlogs[$0].items.count } ?? 0
    }

    /// Queues `item` behind `client`'s others, unless `client` already has
    /// `limit` waiting: then it is not queued and the answer is false.
    @inlinable @discardableResult
    public mutating func enqueue(_ item: Item, from client: Client, limit: Int = .max) -> Bool {
        precondition(limit > 0, "a client must be allowed one item")
        let slot = slot(of: client)
        guard backlogs[slot].items.count < limit else { return false }
        backlogs[slot].items.append(item)
        backlogs[slot].peak = max(backlogs[slot].peak, backlogs[slot].items.count)
        total += 1
        return true
    }

    /// `client`'s slot, made (and the client made new) when it has none.
    @inlinable mutating func slot(of client: Client) -> Int {
        if let slot = slots[client] { return slot }
        let slot = freeSlots.popLast() ?? backlogs.count
        slots[client] = slot
        if slot == backlogs.count { backlogs.append(Backlog(client)) } else { backlogs[slot].client = client }
        newClients.append(slot)
        return slot
    }

    /// The next item to serve and whose it is.
    @inlinable public mutating func dequeue() -> (client: Client, item: Item)? {
        if let slot = newClients.popFirst() {
            oldClients.append(slot)
            return take(from: slot)
        }
        while let slot = oldClients.popFirst() {
            guard !backlogs[slot].items.isEmpty else {
                release(slot)  // its turn came with nothing queued: it leaves
                continue
            }
            oldClients.append(slot)
            return take(from: slot)
        }
        return nil
    }

    @inlinable mutating func take(from slot: Int) -> (client: Client, item: Item) {
        total -= 1
        let item = backlogs[slot].items.removeFirst()
        return (backlogs[slot].client!, item)
    }

    /// Frees an empty slot, keeping its storage unless a backlog grew it.
    @inlinable mutating func release(_ slot: Int) {
        slots[backlogs[slot].client!] = nil
        backlogs[slot].client = nil
        if backlogs[slot].peak > Self.keptItems {
            backlogs[slot].items = []
            backlogs[slot].peak = 0
        }
        freeSlots.append(slot)
    }

    /// Takes every item `client` has waiting, in order.
    @inlinable public mutating func removeAll(of client: Client) -> [Item] {
        guard let slot = slots[client] else { return [] }
        let items = Array(backlogs[slot].items)
        backlogs[slot].items.removeAll(keepingCapacity: true)
        total -= items.count
        if let index = newClients.firstIndex(of: slot) {
            newClients.remove(at: index)
        } else if let index = oldClients.firstIndex(of: slot) {
            oldClients.remove(at: index)
        }
        release(slot)
        return items
    }
}
