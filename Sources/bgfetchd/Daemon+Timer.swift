import BackgroundFetchCore
import DBus

extension Daemon {
    /// Arms the one timer for the engine's earliest deadline. Runs each time
    /// the connection has nothing left to dispatch.
    func armTimer() {
        let deadline = engine.nextDeadline()
        guard deadline != armedDeadline else { return }
        armedDeadline = deadline
        guard let deadline else {
            timer.disarm()
            return
        }
        // Armed at the wall-clock instant itself: a clock step while idle
        // wakes the loop (clockChanged) rather than leaving the timer late.
        timer.arm(atWallClockMicroseconds: deadline)
    }

    func timerEvent(_ event: LoopTimer.Event) {
        switch event {
        case .elapsed:
            fire()
        case .clockChanged:
            logger.info("the wall clock was set; arming the timer again")
            armedDeadline = nil
            armTimer()
        }
    }

    func fire() {
        startRound()
        armedDeadline = nil
        do {
            try engine.fireDue()
        } catch {
            logger.error("cannot store due fetches; retrying in a second", metadata: ["error": "\(error)"])
            armedDeadline = -1
            timer.arm(afterNanoseconds: 1_000_000_000)
        }
    }
}
