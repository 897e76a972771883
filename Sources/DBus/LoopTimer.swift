import CDBus
import Glibc

/// A one-shot timer served by a connection's loop thread.
///
/// It counts on `CLOCK_BOOTTIME`, which keeps counting while the machine
/// sleeps: a deadline that passed during suspend fires right after resume.
/// The handler runs on the loop thread. Arm and disarm it there too.
public final class LoopTimer: @unchecked Sendable {
    let fd: Int32
    private let handler: @Sendable () -> Void
    private weak var loop: EventLoop?

    init(loop: EventLoop, handler: @escaping @Sendable () -> Void) throws(DBusError) {
        fd = timerfd_create(CLOCK_BOOTTIME, Int32(TFD_CLOEXEC | TFD_NONBLOCK))
        guard fd >= 0 else { throw .failed("timerfd_create: \(String(cString: strerror(errno)))") }
        self.loop = loop
        self.handler = handler
    }

    /// Fires once, `nanoseconds` from now (0 fires at the next loop turn).
    public func arm(afterNanoseconds nanoseconds: UInt64) {
        let delay = max(nanoseconds, 1)
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(delay / 1_000_000_000)
        spec.it_value.tv_nsec = Int(delay % 1_000_000_000)
        timerfd_settime(fd, 0, &spec, nil)
    }

    public func disarm() {
        var spec = itimerspec()
        timerfd_settime(fd, 0, &spec, nil)
    }

    /// Stops serving the timer and releases its descriptor.
    public func invalidate() {
        loop?.remove(self)
        closeDescriptor()
    }

    func fire() { handler() }

    private var closed = false
    func closeDescriptor() {
        guard !closed else { return }
        closed = true
        close(fd)
    }
}
