import DBus
import Dispatch
import Glibc
import Logging
import Synchronization

/// One start and one graceful shutdown, all on the daemon's loop.
///
/// SIGTERM and SIGINT arrive through the loop's signalfd (as sd-event takes
/// them), so a signal during start-up waits for the start to finish and then
/// drains the daemon like any other. Nothing here runs on Swift's global
/// executor (the task prefers the loop as its task executor): on Linux the
/// pool's first worker thread starts libdispatch's pool
/// monitor, a timer that wakes the process every second for ever, which
/// would break the promise of zero idle wake-ups. That is also why this is
/// not a swift-service-lifecycle `ServiceGroup`, whose signal handling runs
/// on a dispatch queue.
@DaemonActor final class DaemonLifecycle {
    nonisolated static let shutdownSignals = [SIGTERM, SIGINT]

    private let logger: Logger
    /// Called once, when the daemon has stopped or failed to start.
    private let ended: @Sendable (StartupError?) -> Void
    private var daemon: Daemon?
    private var stopRequested = false
    private var signals: LoopSignals?

    private init(logger: Logger, ended: @escaping @Sendable (StartupError?) -> Void) {
        self.logger = logger
        self.ended = ended
    }

    /// Starts the daemon on `connection` and serves until a shutdown signal;
    /// blocks the calling thread (never the loop's) until then.
    nonisolated static func run(on connection: BusConnection, settings: Daemon.Settings, logger: Logger) throws(StartupError) {
        let done = DispatchSemaphore(value: 0)
        let failure = Mutex<StartupError?>(nil)
        Task { @DaemonActor in
            let lifecycle = DaemonLifecycle(logger: logger) { error in
                failure.withLock { $0 = error }
                done.signal()
            }
            // What Swift would run on its global pool (a continuation's
            // resumption, say) runs on the loop instead.
            await withTaskExecutorPreference(DaemonActor.loop) {
                await lifecycle.start(on: connection, settings: settings)
            }
        }
        done.wait()
        DaemonActor.loop.shutdown()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    private func start(on connection: BusConnection, settings: Daemon.Settings) async {
        do {
            signals = try DaemonActor.loop.watchSignals(Self.shutdownSignals) { signal in
                DaemonActor.assumeIsolated { self.received(signal) }
            }
        } catch {
            return stop(failing: StartupError("cannot watch for signals: \(error.message)"))
        }
        do {
            daemon = try await Daemon.start(on: connection, settings: settings, logger: logger)
        } catch {
            return stop(failing: error)
        }
        if stopRequested { stop() }
    }

    private func received(_ signal: Int32) {
        logger.info("shutting down", metadata: ["signal": "\(signal)"])
        stopRequested = true
        if daemon != nil { stop() }  // else: once started
    }

    private func stop(failing failure: StartupError? = nil) {
        daemon?.shutdown()
        daemon = nil
        signals?.invalidate()
        signals = nil
        ended(failure)
    }
}
