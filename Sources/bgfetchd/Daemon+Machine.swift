import BackgroundFetchCore
import DBus

/// What the machine offers, and sleep.
extension Daemon {
    /// The conditions changed: every waiting fetch they now let go is sent
    /// in this round, all in one wake-up.
    func machineChanged(_ conditions: MachineConditions) {
        startRound()
        do {
            let released = try engine.updateConditions(conditions)
            if released > 0 { logger.info("released waiting fetches", metadata: ["fetches": "\(released)"]) }
        } catch {
            logger.error("cannot store released fetches; they wait for the next change", metadata: ["error": "\(error)"])
        }
    }

    /// Holds logind's sleep inhibitor while any fetch is outstanding.
    func holdSleepWhileFetching() {
        sleepInhibitor.update(
            outstanding: engine.runningFetchCount > 0, logind: machine.logindOwner,
            apps: { engine.appsWithRunningFetches() })
    }
}
