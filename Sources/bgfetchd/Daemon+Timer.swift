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
        let delay = max(0, deadline - SystemClock().now())
        timer.arm(afterNanoseconds: UInt64(delay) * 1000)
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
