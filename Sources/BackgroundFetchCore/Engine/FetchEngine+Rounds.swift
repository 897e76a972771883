/// Rounds: many calls' changes, one commit.
///
/// The host opens a round, serves a number of calls, then commits the round:
/// every change of the round reaches the disk with one sync. A reply to a
/// call that changed stored state must wait for that commit, and
/// ``trackingWrites(_:)`` tells the host which calls did.
extension FetchEngine {
    public func beginRound() { store.beginRound() }

    /// Commits the round. If that fails, the store has undone the whole
    /// round; memory is reloaded to match and the error is thrown: nothing
    /// the round changed may be acknowledged.
    public func commitRound() throws(FetchError) {
        do {
            try store.commitRound()
        } catch {
            do {
                try reload()
            } catch let reloadError {
                logger.critical("cannot reload the state after a failed commit", metadata: ["error": "\(reloadError)"])
            }
            throw error
        }
    }

    /// Runs `body` (a call into the engine) and says whether it stored a
    /// change: if so, its reply waits for the round's commit.
    public func trackingWrites<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> (result: T, wroteState: Bool) {
        let before = changesWritten
        let result = try body()
        return (result, changesWritten != before)
    }
}
