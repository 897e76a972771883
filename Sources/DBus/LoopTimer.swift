import CDBus
import Glibc

/// A one-shot timer served by an ``EventLoop``.
///
/// Made, armed, disarmed and invalidated on the loop's thread (checked); its
/// handler runs there too.
///
/// A `.boottime` timer counts on `CLOCK_BOOTTIME`, which keeps counting while
/// the machine sleeps: a delay that passed during suspend fires right after
/// resume. A `.wallClock` timer is armed at an absolute `CLOCK_REALTIME`
/// instant with `TFD_TIMER_CANCEL_ON_SET`, as sd-event does, so it fires when
/// the wall clock reaches that instant even across a suspend, and its
/// handler hears ``Event/clockChanged`` when the clock is stepped (an NTP
/// step, a manual change) so that the owner can arm it again.
public final class LoopTimer: LoopSource {
    public enum Clock: Sendable { case boottime, wallClock }
    public enum Event: Sendable, Equatable { case elapsed, clockChanged }

    let fd: Int32
    public let clock: Clock
    private let handler: @Sendable (Event) -> Void
    unowned let loop: EventLoop
    var closed = false

    init(loop: EventLoop, clock: Clock, handler: @escaping @Sendable (Event) -> Void) throws(DBusError) {
        loop.preconditionInLoop()
        fd = timerfd_create(clock == .boottime ? CLOCK_BOOTTIME : CLOCK_REALTIME, Int32(TFD_CLOEXEC | TFD_NONBLOCK))
        guard fd >= 0 else { throw .failed("timerfd_create: \(String(cString: strerror(errno)))") }
        self.clock = clock
        self.loop = loop
        self.handler = handler
        loop.add(self)
    }

    /// Fires once, `nanoseconds` from now (0 fires at the next loop turn).
    public func arm(afterNanoseconds nanoseconds: UInt64) {
        let delay = max(nanoseconds, 1)
        set(flags: 0, seconds: delay / 1_000_000_000, nanoseconds: delay % 1_000_000_000)
    }

    /// Fires once when the wall clock reaches `microseconds` since the Unix
    /// epoch (at once if it has already). Only for `.wallClock` timers.
    public func arm(atWallClockMicroseconds microseconds: Int64) {
        precondition(clock == .wallClock, "an absolute wall-clock time needs a .wallClock timer")
        let at = UInt64(max(microseconds, 1))
        set(
            flags: Int32(TFD_TIMER_ABSTIME) | Int32(TFD_TIMER_CANCEL_ON_SET),
            seconds: at / 1_000_000, nanoseconds: (at % 1_000_000) * 1000)
    }

    public func disarm() { set(flags: 0, seconds: 0, nanoseconds: 0) }

    private func set(flags: Int32, seconds: UInt64, nanoseconds: UInt64) {
        loop.preconditionInLoop()
        guard !closed else { return }
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(seconds)
        spec.it_value.tv_nsec = Int(nanoseconds)
        timerfd_settime(fd, flags, &spec, nil)
    }

    /// Stops serving the timer and releases its descriptor.
    public func invalidate() {
        stopWatching()
    }

    /// The loop saw the descriptor readable.
    func ready() {
        var expirations: UInt64 = 0
        if read(fd, &expirations, 8) < 0 {
            if errno == ECANCELED { handler(.clockChanged) }
            return
        }
        handler(.elapsed)
    }

}

extension EventLoop {
    /// A timer on this loop; call it on the loop's thread.
    public func makeTimer(
        clock: LoopTimer.Clock = .boottime, _ handler: @escaping @Sendable (LoopTimer.Event) -> Void
    ) throws(DBusError) -> LoopTimer {
        try LoopTimer(loop: self, clock: clock, handler: handler)
    }
}
