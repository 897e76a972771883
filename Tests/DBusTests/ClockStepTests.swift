import DBus
import Glibc
import Synchronization
import TestKit
import Testing

@Suite struct ClockStepTests {
    /// A wall-clock timer hears the clock being set, so its owner can arm it
    /// again for the new wall time, as sd-event does.
    @Test func aWallClockTimerHearsAClockStep() async throws {
        let loop = try EventLoop(name: "clock-step")
        defer { loop.shutdown() }
        let events = Mutex<[LoopTimer.Event]>([])
        let (heard, continuation) = AsyncStream<Void>.makeStream()
        try loop.sync { () throws(DBusError) -> Void in
            let timer = try loop.makeTimer(clock: .wallClock) { event in
                events.withLock { $0.append(event) }
                continuation.yield()
            }
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            timer.arm(atWallClockMicroseconds: Int64(now.tv_sec + 3600) * 1_000_000)
        }
        if let reason = WallClockStep.byNothing() {
            print("skipped: the wall clock cannot be stepped here (\(reason)); it needs CAP_SYS_TIME")
            return
        }
        var iterator = heard.makeAsyncIterator()
        await iterator.next()
        // Each set of the clock is heard (the step is two sets, and other
        // tests may step it too); an hour away, nothing else can be.
        let heardEvents = events.withLock { $0 }
        #expect(!heardEvents.isEmpty && heardEvents.allSatisfy { $0 == .clockChanged }, "\(heardEvents)")
    }
}
