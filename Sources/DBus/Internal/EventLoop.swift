import CDBus
import Foundation
import Glibc
import Synchronization

/// The one thread that owns a libdbus connection.
///
/// It runs a `poll()` loop over the connection's watches, an eventfd that other
/// threads write to when they post work, and the timerfds of ``LoopTimer``s.
/// libdbus's watch, timeout, wake-up and dispatch-status functions feed it, so
/// `dbus_connection_dispatch` runs the filters and pending-call replies here and
/// nowhere else. Every libdbus call on the connection is made on this thread.
final class EventLoop: @unchecked Sendable {
    private let wakeFD: Int32
    private let posted = Mutex<[@Sendable () -> Void]>([])
    private let stopRequested = Atomic<Bool>(false)
    private var threadID: pthread_t?
    private let finished = DispatchSemaphore(value: 0)

    // Loop-thread state.
    var connection: OpaquePointer?
    private var watches: [OpaquePointer] = []
    private var timeouts: [OpaquePointer: UInt64] = [:]
    private var timers: [Int32: LoopTimer] = [:]
    var messageHandler: (@Sendable (Message) -> Bool)?
    /// Returns true when it has work left: the loop then looks at its
    /// sockets and timers without waiting and calls it again.
    var idleHandler: (@Sendable () -> Bool)?
    var disconnectHandler: (@Sendable () -> Void)?

    init() throws(DBusError) {
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else { throw .failed("eventfd: \(String(cString: strerror(errno)))") }
    }

    deinit { close(wakeFD) }

    var isOnLoopThread: Bool {
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    // MARK: Running work on the loop thread

    /// Runs `body` on the loop thread, later if called from another thread.
    func post(_ body: @escaping @Sendable () -> Void) {
        posted.withLock { $0.append(body) }
        wake()
    }

    /// Runs `body` on the loop thread and waits for its result.
    func sync<T: Sendable>(_ body: @escaping @Sendable () throws(DBusError) -> T) throws(DBusError) -> T {
        if isOnLoopThread { return try body() }
        let result = Mutex<Result<T, DBusError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        post {
            let outcome: Result<T, DBusError>
            do throws(DBusError) { outcome = .success(try body()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: The thread

    func start(name: String) {
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            threadID = pthread_self()
            ready.signal()
            run()
            finished.signal()
        }
        thread.name = name
        thread.stackSize = 4 << 20
        thread.start()
        ready.wait()
    }

    /// Asks the loop to stop and waits until it has, unless called on it.
    func stop() {
        guard !stopRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake()
        if !isOnLoopThread { finished.wait() }
    }

    private func runPosted() {
        let work = posted.withLock { queue -> [@Sendable () -> Void] in
            let taken = queue
            queue.removeAll(keepingCapacity: true)
            return taken
        }
        for body in work { body() }
    }

    /// At most this many messages are dispatched before the idle handler
    /// runs, so the work of one turn stays bounded.
    static let dispatchesPerTurn = 1024

    /// libdbus reads up to about 4 KiB each time a watch is handled; a socket
    /// that is still readable is read again, up to this many times a turn, so
    /// that everything waiting reaches the handler together (and a server can
    /// choose what to serve first) rather than a few messages a turn in
    /// arrival order. Sixteen reads stay within what one turn dispatches.
    static let readsPerTurn = 16

    private func dispatchAll() {
        guard let connection else { return }
        var dispatched = 0
        while dispatched < Self.dispatchesPerTurn,
            dbus_connection_get_dispatch_status(connection) == DBUS_DISPATCH_DATA_REMAINS
        {
            dbus_connection_dispatch(connection)
            runPosted()
            dispatched += 1
        }
    }

    private var hasMessagesQueued: Bool {
        guard let connection else { return false }
        return dbus_connection_get_dispatch_status(connection) == DBUS_DISPATCH_DATA_REMAINS
    }

    private func run() {
        while !stopRequested.load(ordering: .acquiring) {
            runPosted()
            dispatchAll()
            let moreToDo = idleHandler?() ?? false
            runPosted()
            if stopRequested.load(ordering: .acquiring) { break }
            pollOnce(wait: !moreToDo)
        }
        runPosted()
        if let connection {
            dbus_connection_flush(connection)
            dbus_connection_close(connection)
            dbus_connection_unref(connection)
            self.connection = nil
        }
        for timer in timers.values { timer.closeDescriptor() }
        timers.removeAll()
    }

    private func pollOnce(wait: Bool) {
        var fds: [pollfd] = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        var polledWatches: [OpaquePointer] = []
        for watch in watches where dbus_watch_get_enabled(watch) != 0 {
            let flags = dbus_watch_get_flags(watch)
            var events: Int16 = 0
            if flags & DBUS_WATCH_READABLE.rawValue != 0 { events |= Int16(POLLIN) }
            if flags & DBUS_WATCH_WRITABLE.rawValue != 0 { events |= Int16(POLLOUT) }
            fds.append(pollfd(fd: dbus_watch_get_unix_fd(watch), events: events, revents: 0))
            polledWatches.append(watch)
        }
        let timerFDs = Array(timers.keys)
        for fd in timerFDs { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }

        let now = Self.monotonicMilliseconds()
        var timeoutMs: Int32 = -1
        for (timeout, started) in timeouts where dbus_timeout_get_enabled(timeout) != 0 {
            let due = started + UInt64(max(0, dbus_timeout_get_interval(timeout)))
            let remaining = due > now ? Int32(clamping: due - now) : 0
            timeoutMs = timeoutMs < 0 ? remaining : min(timeoutMs, remaining)
        }

        // Messages left over from a capped turn, or work the idle handler
        // left: look at the sockets, but do not wait.
        if !wait || hasMessagesQueued { timeoutMs = 0 }
        let count = poll(&fds, nfds_t(fds.count), timeoutMs)
        if count < 0 { return }  // EINTR: go round again

        if fds[0].revents != 0 {
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
        }
        for (index, watch) in polledWatches.enumerated() {
            let revents = fds[index + 1].revents
            guard revents != 0, watches.contains(watch) else { continue }
            var flags: UInt32 = 0
            if revents & Int16(POLLIN) != 0 { flags |= DBUS_WATCH_READABLE.rawValue }
            if revents & Int16(POLLOUT) != 0 { flags |= DBUS_WATCH_WRITABLE.rawValue }
            if revents & Int16(POLLHUP) != 0 { flags |= DBUS_WATCH_HANGUP.rawValue }
            if revents & Int16(POLLERR) != 0 { flags |= DBUS_WATCH_ERROR.rawValue }
            dbus_watch_handle(watch, flags)
            if flags == DBUS_WATCH_READABLE.rawValue { readOn(watch, fd: fds[index + 1].fd) }
        }
        let after = Self.monotonicMilliseconds()
        for (timeout, started) in timeouts where dbus_timeout_get_enabled(timeout) != 0 {
            if started + UInt64(max(0, dbus_timeout_get_interval(timeout))) <= after {
                timeouts[timeout] = after
                dbus_timeout_handle(timeout)
            }
        }
        for (offset, fd) in timerFDs.enumerated() where fds[1 + polledWatches.count + offset].revents != 0 {
            var expirations: UInt64 = 0
            _ = read(fd, &expirations, 8)
            timers[fd]?.fire()
        }
    }

    /// Reads again while the socket has more, up to ``readsPerTurn`` times.
    private func readOn(_ watch: OpaquePointer, fd: Int32) {
        for _ in 1..<Self.readsPerTurn {
            var probe = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&probe, 1, 0) == 1, probe.revents == Int16(POLLIN), watches.contains(watch),
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

    // MARK: Timers

    func add(_ timer: LoopTimer) { timers[timer.fd] = timer }
    func remove(_ timer: LoopTimer) { timers[timer.fd] = nil }

    // MARK: libdbus's main-loop contract

    func install(on connection: OpaquePointer) {
        self.connection = connection
        let me = Unmanaged.passUnretained(self).toOpaque()
        dbus_connection_set_watch_functions(
            connection,
            { watch, data in
                EventLoop.from(data).watches.append(watch!)
                return 1
            },
            { watch, data in
                EventLoop.from(data).watches.removeAll { $0 == watch }
            },
            { _, _ in },
            me, nil)
        dbus_connection_set_timeout_functions(
            connection,
            { timeout, data in
                EventLoop.from(data).timeouts[timeout!] = EventLoop.monotonicMilliseconds()
                return 1
            },
            { timeout, data in
                EventLoop.from(data).timeouts[timeout!] = nil
            },
            { timeout, data in
                EventLoop.from(data).timeouts[timeout!] = EventLoop.monotonicMilliseconds()
            },
            me, nil)
        dbus_connection_set_wakeup_main_function(
            connection,
            { data in
                let loop = EventLoop.from(data)
                if !loop.isOnLoopThread { loop.wake() }
            },
            me, nil)
        dbus_connection_set_dispatch_status_function(
            connection,
            { _, status, data in
                let loop = EventLoop.from(data)
                if status == DBUS_DISPATCH_DATA_REMAINS, !loop.isOnLoopThread { loop.wake() }
            },
            me, nil)
        dbus_connection_add_filter(
            connection,
            { _, raw, data in
                let loop = EventLoop.from(data)
                guard let raw else { return DBUS_HANDLER_RESULT_NOT_YET_HANDLED }
                dbus_message_ref(raw)
                let message = Message(owning: raw)
                if message.kind == .signal, message.interface == "org.freedesktop.DBus.Local",
                    message.member == "Disconnected"
                {
                    loop.disconnectHandler?()
                    return DBUS_HANDLER_RESULT_HANDLED
                }
                let handled = loop.messageHandler?(message) ?? false
                return handled ? DBUS_HANDLER_RESULT_HANDLED : DBUS_HANDLER_RESULT_NOT_YET_HANDLED
            },
            me, nil)
    }

    static func from(_ data: UnsafeMutableRawPointer?) -> EventLoop {
        Unmanaged<EventLoop>.fromOpaque(data!).takeUnretainedValue()
    }
}
