import HeapModule

/// When each task next needs the engine: its due time if it may fire, or the
/// expiry of its delivered fetch. Two min-heaps with lazy deletion, so a
/// change costs O(log n) and finding the next wake-up looks only at the
/// fetches that can share it, not at every task.
struct DueIndex {
    enum Kind: Equatable {
        case due(interval: UInt32)
        case expiry
    }

    struct Entry: Comparable {
        var time: Int64
        var version: UInt64
        var key: TaskKey
        var interval: UInt32

        static func < (a: Entry, b: Entry) -> Bool { (a.time, a.version) < (b.time, b.version) }
        static func == (a: Entry, b: Entry) -> Bool { a.time == b.time && a.version == b.version }
    }

    /// A wake-up serves at most this many due fetches: with thousands due
    /// together, finding the wake-up would otherwise cost a walk over all of
    /// them after every change. The rest go at the next wake-up, still inside
    /// their windows or as soon as possible.
    static let largestBatch = 64

    private var dues = Heap<Entry>()
    private var expiries = Heap<Entry>()
    /// The live version of each task's entry; older entries are stale.
    private var versions: [TaskKey: UInt64] = [:]
    private var nextVersion: UInt64 = 1
    /// The last batched wake-up of the due fetches, and the latest due time
    /// a new task may have without changing it: registering tasks due later
    /// than the current batch does not walk the batch again.
    private var cachedWake: (wake: Int64?, horizon: Int64)?

    /// Records `key`'s one time (or none), replacing what was recorded.
    mutating func set(_ key: TaskKey, time: Int64?, kind: Kind) {
        guard let time else {
            remove(key)
            return
        }
        let version = nextVersion
        nextVersion += 1
        // A task that had an entry may have been in the batch.
        if versions.updateValue(version, forKey: key) != nil { cachedWake = nil }
        switch kind {
        case .due(let interval):
            dues.insert(Entry(time: time, version: version, key: key, interval: interval))
            if let horizon = cachedWake?.horizon, time <= horizon { cachedWake = nil }
        case .expiry:
            expiries.insert(Entry(time: time, version: version, key: key, interval: 0))
        }
        compactIfStale()
    }

    mutating func remove(_ key: TaskKey) {
        if versions.removeValue(forKey: key) != nil { cachedWake = nil }
    }

    mutating func removeAll() {
        dues = Heap()
        expiries = Heap()
        versions.removeAll()
        cachedWake = nil
    }

    private func isLive(_ entry: Entry) -> Bool { versions[entry.key] == entry.version }

    private static func dropStale(_ heap: inout Heap<Entry>, _ isLive: (Entry) -> Bool) {
        while let top = heap.min, !isLive(top) { _ = heap.popMin() }
    }

    /// The earliest time anything is due: an expiry, or the batched wake-up
    /// of the earliest due fetches (see ``Batching``).
    mutating func nextDeadline() -> Int64? {
        let live = versions
        Self.dropStale(&expiries) { live[$0.key] == $0.version }
        Self.dropStale(&dues) { live[$0.key] == $0.version }
        let expiry = expiries.min?.time
        let cached = cachedWake ?? dueWake()
        cachedWake = cached
        guard let wake = cached.wake else { return expiry }
        return expiry.map { min($0, wake) } ?? wake
    }

    /// The batched wake-up of the earliest due fetches, and the horizon:
    /// a new task due after it would not change the wake-up.
    private mutating func dueWake() -> (wake: Int64?, horizon: Int64) {
        guard let first = dues.min else { return (nil, .max) }
        // Walk the due fetches in order while each still fits every window so far.
        var taken: [Entry] = []
        var wake = first.time
        var closes = Batching.Candidate(due: first.time, interval: first.interval).latest
        while taken.count < Self.largestBatch, let next = dues.min {
            if !isLive(next) {
                _ = dues.popMin()
                continue
            }
            guard next.time <= closes else { break }
            wake = next.time
            closes = min(closes, Batching.Candidate(due: next.time, interval: next.interval).latest)
            taken.append(dues.removeMin())
        }
        for entry in taken { dues.insert(entry) }
        // A full batch is changed only by a task due before its last one.
        let horizon = taken.count == Self.largestBatch ? wake : closes
        return (wake, horizon)
    }

    /// Takes out the tasks whose time has come by `now`, at most `limit`:
    /// expiries first, then due fetches, each in time order. The caller records their new
    /// times afterwards (or the same ones, if nothing changed).
    mutating func takeDue(by now: Int64, limit: Int = .max) -> (expiring: [TaskKey], due: [TaskKey]) {
        var expiring: [TaskKey] = []
        var due: [TaskKey] = []
        cachedWake = nil
        while expiring.count < limit, let top = expiries.min, top.time <= now {
            let entry = expiries.removeMin()
            if isLive(entry) { expiring.append(entry.key) }
        }
        while expiring.count + due.count < limit, let top = dues.min, top.time <= now {
            let entry = dues.removeMin()
            if isLive(entry) { due.append(entry.key) }
        }
        return (expiring, due)
    }

    /// Rebuilds the heaps when stale entries outnumber live ones.
    private mutating func compactIfStale() {
        guard dues.count + expiries.count > 2 * versions.count + 64 else { return }
        let live = versions
        dues = Heap(dues.unordered.filter { live[$0.key] == $0.version })
        expiries = Heap(expiries.unordered.filter { live[$0.key] == $0.version })
    }
}
