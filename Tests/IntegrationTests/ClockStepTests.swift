import Foundation
import TestKit
import Testing

/// bgfetchd arms its timer at the next due time's wall-clock instant; when
/// the wall clock is set, the kernel wakes it (TFD_TIMER_CANCEL_ON_SET) and
/// it arms the timer again, rather than staying late.
@Suite(.timeLimit(.minutes(1)))
struct DaemonClockStepTests {
    @Test func aClockStepWakesTheDaemonToArmItsTimerAgain() throws {
        let f = try Fixture()
        try f.client.register("hourly", .options(interval: 3600))
        // Barrier: the daemon arms its timer after the turn that served the
        // registration; a call it serves in a later turn proves that is done.
        try f.client.call("GetStatus")
        if let reason = WallClockStep.byNothing() {
            print("skipped: the wall clock cannot be stepped here (\(reason)); it needs CAP_SYS_TIME")
            return
        }
        let deadline = Date().addingTimeInterval(10)
        while !f.daemon.log.contains("the wall clock was set"), Date() < deadline { usleep(20_000) }
        #expect(f.daemon.log.contains("the wall clock was set; arming the timer again"))
        // Still serving, and the task still has its due time.
        #expect(try f.client.tasks().keys.sorted() == ["hourly"])
    }
}
