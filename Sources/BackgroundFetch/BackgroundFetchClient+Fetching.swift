import DBus

/// Running a task's handler for a fetch and answering it.
extension BackgroundFetchClient {
    /// `FetchRequested`, on the connection's thread: start the handler in its
    /// own task, with a watchdog for the deadline.
    func fetchRequested(task name: String, requestID: UInt64) {
        let arrival = ContinuousClock.now
        let processHandler = Self.processHandlers.withLock { $0[name] }
        let defined = state.withLock { state -> Bool in
            guard !state.closed, state.running[requestID] == nil else { return true }  // already running it
            guard let handler = state.handlers[name] ?? processHandler else { return false }
            let context = FetchContext(
                taskName: name, requestID: requestID, deadline: arrival + (state.fetchTimeout ?? .seconds(30)))
            let work = Task { try await handler(context) }
            state.running[requestID] = RunningFetch(work: work)
            Task { await self.supervise(context, work) }
            return true
        }
        if !defined {
            Task { await answer(task: name, requestID: requestID, result: .failed, cancelled: false, send: true) }
        }
    }

    /// `FetchExpired`, on the connection's thread: the service stopped
    /// waiting; cancel the handler and do not answer.
    func fetchExpired(requestID: UInt64) {
        let work = state.withLock { state -> Task<BackgroundFetchResult, any Error>? in
            guard var running = state.running[requestID] else { return nil }
            running.expired = true
            state.running[requestID] = running
            return running.work
        }
        work?.cancel()
    }

    /// Waits for the handler, cancelling it at the deadline, then answers.
    private func supervise(_ context: FetchContext, _ work: Task<BackgroundFetchResult, any Error>) async {
        let watchdog = Task { [weak self] in
            try? await Task.sleep(until: context.deadline, clock: .continuous)
            guard !Task.isCancelled else { return }
            self?.state.withLock { $0.running[context.requestID]?.timedOut = true }
            work.cancel()
        }
        let outcome: BackgroundFetchResult
        do {
            outcome = try await work.value
        } catch {
            outcome = .failed
        }
        watchdog.cancel()
        let running = state.withLock { $0.running.removeValue(forKey: context.requestID) }
        let expired = running?.expired ?? false
        let cancelled = expired || (running?.timedOut ?? false)
        await answer(
            task: context.taskName, requestID: context.requestID, result: cancelled ? .failed : outcome,
            cancelled: cancelled, send: !expired)
    }

    /// Calls `FinishFetch` (unless `send` is false) and tells the observers.
    private func answer(task name: String, requestID: UInt64, result: BackgroundFetchResult, cancelled: Bool, send: Bool)
        async
    {
        var acknowledged = false
        var reportError: BackgroundFetchError?
        if send {
            do throws(BackgroundFetchError) {
                _ = try await callService("FinishFetch", [.uint64(requestID), .uint32(result.rawValue)])
                acknowledged = true
            } catch {
                reportError = error
            }
        }
        let completed = CompletedFetch(
            taskName: name, requestID: requestID, result: result, cancelled: cancelled, acknowledged: acknowledged,
            reportError: reportError)
        for observer in state.withLock({ Array($0.observers.values) }) { observer.yield(completed) }
    }
}
