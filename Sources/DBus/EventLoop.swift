import CDBus
import Foundation
import Glibc
import Synchronization

/// One thread that serves any number of bus connections and timers, and the
/// serial executor of whatever is isolated to it.
///
/// It runs a `poll()` loop over its connections' watches, an eventfd that
/// other threads write to when they hand it work, its timers' timerfds and
/// the signalfd of the signals it watches.
/// libdbus's watch, timeout, wake-up and dispatch-status functions feed it,
/// so `dbus_connection_dispatch` runs filters and pending-call replies here
/// and nowhere else: every libdbus call on its connections is made on this
/// thread.
///
/// It is a `SerialExecutor`: an actor whose `unownedExecutor` is the loop's
/// runs on this thread, so state that "lives on the loop" is isolated by the
/// compiler (see `BusActor`-style global actors in the daemon). Code the
/// compiler cannot see through, such as C callbacks, checks with
/// ``preconditionInLoop()``.
///
/// Shutting down drains: new work is refused, every connection is closed,
/// and every call still waiting for a reply completes with `Disconnected`.
///
/// `@unchecked Sendable`: its loop-thread state is touched only on that
/// thread (checked), the rest is atomic or behind a `Mutex`.
public final class EventLoop: @unchecked Sendable {
    private let wakeFD: Int32
    private let inbox = Mutex(Inbox())
    private let threadID = Atomic<UInt>(0)
    private let finished = DispatchSemaphore(value: 0)
    /// Jobs that arrive after the thread has gone run here, one at a time.
    let lateJobs = Mutex(LateJobs())

    // Loop-thread state.
    private var connections: [ConnectionCore] = []
    /// Timers and signal watches, by descriptor.
    private var sources: [Int32: any LoopSource] = [:]
    private var idleHandler: (@Sendable () -> Bool)?
    /// What a turn polls, kept for the next turn so that a turn allocates nothing.
    private var spare = PollSet()

    struct PollSet {
        var fds: [pollfd] = []
        var watches: [(core: ConnectionCore, watch: OpaquePointer)] = []
        var sourceFDs: [Int32] = []

        mutating func clear() {
            fds.removeAll(keepingCapacity: true)
            watches.removeAll(keepingCapacity: true)
            sourceFDs.removeAll(keepingCapacity: true)
        }
    }

    struct Inbox {
        var accepting = true
        var work: [Work] = []
    }

    enum Work {
        case closure(@Sendable () -> Void)
        case job(UnownedJob)
    }

    /// Starts the loop's thread.
    public init(name: String) throws(DBusError) {
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else { throw .failed("eventfd: \(String(cString: strerror(errno)))") }
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            threadID.store(UInt(pthread_self()), ordering: .releasing)
            ready.signal()
            run()
            finished.signal()
        }
        thread.name = name
        thread.stackSize = 4 << 20
        thread.start()
        ready.wait()
    }

    deinit { close(wakeFD) }

    /// True on the loop's thread.
    public var inLoop: Bool { threadID.load(ordering: .acquiring) == UInt(pthread_self()) }

    /// Stops the process when not called on the loop's thread.
    public func preconditionInLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inLoop, "not on the event loop's thread", file: file, line: line)
    }

    /// Whether the loop still takes work: false once shutting down.
    public var isRunning: Bool { inbox.withLock { $0.accepting } }

    // MARK: Handing work to the loop

    /// Runs `body` on the loop's thread, later. Returns false, and runs
    /// nothing, once the loop is shutting down.
    @discardableResult
    public func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        hand(.closure(body))
    }

    /// Queues `work` and wakes the loop; false, queuing nothing, once it is shutting down.
    private func hand(_ work: Work) -> Bool {
        let accepted = inbox.withLock { inbox -> Bool in
            guard inbox.accepting else { return false }
            inbox.work.append(work)
            return true
        }
        if accepted { wake() }
        return accepted
    }

    /// Runs `body` on the loop's thread and waits for its result; on the
    /// loop's thread it runs at once. Throws `Disconnected` once the loop is
    /// shutting down.
    public func sync<T: Sendable>(_ body: @escaping @Sendable () throws(DBusError) -> T) throws(DBusError) -> T {
        if inLoop { return try body() }
        let result = Mutex<Result<T, DBusError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let accepted = execute {
            let outcome: Result<T, DBusError>
            do throws(DBusError) { outcome = .success(try body()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        guard accepted else { throw .closed }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Queues a job; the loop runs it on its thread. Once the loop has
    /// stopped, jobs run on the thread that queues them, one at a time.
    func enqueue(job: UnownedJob) {
        if !hand(.job(job)) { runLate(job) }
    }

    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Runs on the loop's thread each time it has dispatched what it had and
    /// is about to wait. Returning true means it has work left: the loop then
    /// reads what came meanwhile, without waiting, and calls it again.
    public func setIdleHandler(_ handler: @escaping @Sendable () -> Bool) {
        preconditionInLoop()
        idleHandler = handler
    }

    // MARK: Shutting down

    /// Refuses new work, runs what was handed over before, closes every
    /// connection (failing the calls still waiting for a reply) and every
    /// timer, and ends the thread; waits for that unless called on it.
    public func shutdown() {
        let first = inbox.withLock { inbox -> Bool in
            defer { inbox.accepting = false }
            return inbox.accepting
        }
        if first { wake() }
        if !inLoop { finished.wait(); finished.signal() }
    }

    // MARK: Connections, timers and signals (on the loop's thread)

    func attach(_ core: ConnectionCore) {
        preconditionInLoop()
        connections.append(core)
        core.install()
    }

    func detach(_ core: ConnectionCore) {
        preconditionInLoop()
        core.close()
        connections.removeAll { $0 === core }
    }

    func add(_ source: any LoopSource) { sources[source.fd] = source }
    func remove(_ source: any LoopSource) { sources[source.fd] = nil }

    // MARK: The thread

    /// Takes what was handed over. Asked after every message dispatched,
    /// so with nothing handed over it allocates nothing.
    private func takeWork() -> [Work] {
        inbox.withLock { inbox in
            guard !inbox.work.isEmpty else { return [] }
            defer { inbox.work = [] }
            return inbox.work
        }
    }

    private func runHandedWork() {
        for item in takeWork() {
            switch item {
            case .closure(let body): body()
            case .job(let job): job.runSynchronously(on: asUnownedSerialExecutor())
            }
        }
    }

    /// At most this many messages are dispatched from one connection before
    /// the idle handler runs, so the work of one turn stays bounded.
    static let dispatchesPerTurn = 1024

    private func dispatchAll() {
        for core in connections {
            var dispatched = 0
            while dispatched < Self.dispatchesPerTurn, core.hasMessagesQueued {
                core.dispatchOne()
                dispatched += 1
                runHandedWork()
            }
        }
    }

    private var hasMessagesQueued: Bool { connections.contains { $0.hasMessagesQueued } }

    private func run() {
        while isRunning {
            runHandedWork()
            dispatchAll()
            let moreToDo = idleHandler?() ?? false
            runHandedWork()
            guard isRunning else { break }
            pollOnce(wait: !moreToDo)
        }
        // Drain: what was handed over before the refusal still runs; jobs
        // that closing wakes (callers of failed calls) wait in the late queue.
        lateJobs.withLock { $0.runner = UInt(pthread_self()) }
        runHandedWork()
        for core in connections { core.close() }
        connections.removeAll()
        for source in sources.values { source.closeDescriptor() }
        sources.removeAll()
        idleHandler = nil
        drainLateJobs()
        threadID.store(0, ordering: .releasing)
    }

    private func pollOnce(wait: Bool) {
        // Taken, not borrowed: a turn run from inside this one would find none.
        var set = spare
        spare = PollSet()
        defer {
            set.clear()
            spare = set
        }
        set.fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
        for core in connections {
            for watch in core.watches where dbus_watch_get_enabled(watch) != 0 {
                let flags = dbus_watch_get_flags(watch)
                var events: Int16 = 0
                if flags & DBUS_WATCH_READABLE.rawValue != 0 { events |= Int16(POLLIN) }
                if flags & DBUS_WATCH_WRITABLE.rawValue != 0 { events |= Int16(POLLOUT) }
                set.fds.append(pollfd(fd: dbus_watch_get_unix_fd(watch), events: events, revents: 0))
                set.watches.append((core, watch))
            }
        }
        set.sourceFDs.append(contentsOf: sources.keys)
        for fd in set.sourceFDs { set.fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }

        let now = Self.monotonicMilliseconds()
        var timeoutMs: Int32 = -1
        for core in connections {
            for (timeout, started) in core.timeouts where dbus_timeout_get_enabled(timeout) != 0 {
                let due = started + UInt64(max(0, dbus_timeout_get_interval(timeout)))
                let remaining = due > now ? Int32(clamping: due - now) : 0
                timeoutMs = timeoutMs < 0 ? remaining : min(timeoutMs, remaining)
            }
        }
        // Messages left over from a capped turn, or work the idle handler
        // left: look at the sockets, but do not wait.
        if !wait || hasMessagesQueued { timeoutMs = 0 }
        let count = poll(&set.fds, nfds_t(set.fds.count), timeoutMs)
        if count < 0 { return }  // EINTR: go round again

        if set.fds[0].revents != 0 {
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
        }
        for (index, (core, watch)) in set.watches.enumerated() {
            let revents = set.fds[index + 1].revents
            guard revents != 0, core.watches.contains(watch) else { continue }
            var flags: UInt32 = 0
            if revents & Int16(POLLIN) != 0 { flags |= DBUS_WATCH_READABLE.rawValue }
            if revents & Int16(POLLOUT) != 0 { flags |= DBUS_WATCH_WRITABLE.rawValue }
            if revents & Int16(POLLHUP) != 0 { flags |= DBUS_WATCH_HANGUP.rawValue }
            if revents & Int16(POLLERR) != 0 { flags |= DBUS_WATCH_ERROR.rawValue }
            dbus_watch_handle(watch, flags)
            if flags == DBUS_WATCH_READABLE.rawValue { readMore(core, watch, fd: set.fds[index + 1].fd) }
        }
        let after = Self.monotonicMilliseconds()
        for core in connections {
            for (timeout, started) in core.timeouts where dbus_timeout_get_enabled(timeout) != 0 {
                if started + UInt64(max(0, dbus_timeout_get_interval(timeout))) <= after {
                    core.timeouts[timeout] = after
                    dbus_timeout_handle(timeout)
                }
            }
        }
        for (offset, fd) in set.sourceFDs.enumerated() where set.fds[1 + set.watches.count + offset].revents != 0 {
            sources[fd]?.ready()
        }
    }

    /// libdbus reads up to about 4 KiB each time a watch is handled; a socket
    /// that is still readable is read again, up to this many times a turn, so
    /// that everything waiting reaches the handler together (and a server can
    /// choose what to serve first) rather than a few messages a turn in
    /// arrival order. Sixteen reads stay within what one turn dispatches.
    static let readsPerTurn = 16

    private func readMore(_ core: ConnectionCore, _ watch: OpaquePointer, fd: Int32) {
        for _ in 1..<Self.readsPerTurn {
            var probe = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&probe, 1, 0) == 1, probe.revents == Int16(POLLIN), core.watches.contains(watch),
                dbus_watch_get_enabled(watch) != 0
            else { return }
            dbus_watch_handle(watch, DBUS_WATCH_READABLE.rawValue)
        }
    }

    static func monotonicMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}
