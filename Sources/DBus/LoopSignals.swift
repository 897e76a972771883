import CDBus
import Glibc

/// What a loop polls besides its connections: a descriptor that turns
/// readable, handled on the loop's thread.
protocol LoopSource: AnyObject {
    var fd: Int32 { get }
    /// The loop that polls it.
    var loop: EventLoop { get }
    /// Set once the descriptor is closed.
    var closed: Bool { get set }
    func ready()
}

extension LoopSource {
    /// Stops the loop polling it and releases the descriptor (on the loop's thread).
    func stopWatching() {
        loop.preconditionInLoop()
        loop.remove(self)
        closeDescriptor()
    }

    func closeDescriptor() {
        guard !closed else { return }
        closed = true
        close(fd)
    }
}

/// Signals received as events of the loop, through a signalfd, as sd-event
/// does: no handler runs in signal context and no side thread waits for them.
///
/// The signals must be blocked in every thread of the process, which means
/// blocking them before any thread starts (see ``blockInEveryThread(_:)``).
public final class LoopSignals: LoopSource {
    let fd: Int32
    private let handler: @Sendable (Int32) -> Void
    unowned let loop: EventLoop
    var closed = false

    init(loop: EventLoop, signals: [Int32], handler: @escaping @Sendable (Int32) -> Void) throws(DBusError) {
        loop.preconditionInLoop()
        var set = LoopSignals.set(of: signals)
        fd = signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        guard fd >= 0 else { throw .failed("signalfd: \(String(cString: strerror(errno)))") }
        self.loop = loop
        self.handler = handler
        loop.add(self)
    }

    /// Blocks `signals` in the calling thread and in every thread it starts
    /// afterwards. Call it first thing in `main`.
    public static func blockInEveryThread(_ signals: [Int32]) {
        var set = set(of: signals)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private static func set(of signals: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        return set
    }

    func ready() {
        var info = signalfd_siginfo()
        while read(fd, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            handler(Int32(info.ssi_signo))
        }
    }

    /// Stops watching and releases the descriptor.
    public func invalidate() {
        stopWatching()
    }

}

extension EventLoop {
    /// Watches `signals` (blocked in every thread beforehand); `handler`
    /// runs on the loop's thread with each one received. Call it there.
    public func watchSignals(_ signals: [Int32], _ handler: @escaping @Sendable (Int32) -> Void) throws(DBusError) -> LoopSignals {
        try LoopSignals(loop: self, signals: signals, handler: handler)
    }
}
