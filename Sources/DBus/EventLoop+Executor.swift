import Glibc
import Synchronization

/// The loop as the serial executor of what is isolated to it, and as a task
/// executor: a task that prefers it (`withTaskExecutorPreference`) runs its
/// nonisolated parts, and the resumptions Swift routes through the generic
/// executor, on the loop too, never on the global pool.
extension EventLoop: SerialExecutor, TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        enqueue(job: UnownedJob(job))
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Called by `assumeIsolated` where the runtime cannot tell by itself,
    /// such as in a libdbus callback on the loop's thread.
    public func checkIsolated() {
        precondition(isRunningItsWork, "not on the event loop's thread")
    }

    public func isIsolatingCurrentContext() -> Bool? { isRunningItsWork }

    /// On the loop's thread, or on the thread running its late jobs.
    var isRunningItsWork: Bool {
        inLoop || lateJobs.withLock { $0.runner } == UInt(pthread_self())
    }
}

extension EventLoop {
    /// Jobs that reach a loop that has stopped: they still run, one at a
    /// time, on the thread that queued the first of them (so an actor on the
    /// loop can finish what it was awaiting, with the error that says why).
    struct LateJobs {
        var queue: [UnownedJob] = []
        /// The thread running them now, or 0.
        var runner: UInt = 0
    }

    func runLate(_ job: UnownedJob) {
        let mine = lateJobs.withLock { late -> Bool in
            late.queue.append(job)
            guard late.runner == 0 else { return false }
            late.runner = UInt(pthread_self())
            return true
        }
        if mine { drainLateJobs() }
    }

    /// Runs late jobs until none is left, then lets go of the runner's place.
    func drainLateJobs() {
        while let job = lateJobs.withLock({ late -> UnownedJob? in
            guard !late.queue.isEmpty else {
                late.runner = 0
                return nil
            }
            return late.queue.removeFirst()
        }) {
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }
}
