import BackgroundFetchCore
import Logging

/// A day of many tasks run through the real engine on a manual clock, to
/// count the wake-ups bgfetchd needs and check every fetch's lateness; and
/// the same timers as systemd would run them, for comparison.
///
/// Each task's interval is drawn from `intervals` and its first registration
/// from a random phase within its interval; each fetch is answered at once
/// with NoData, NewData or Failed drawn from a fixed mix. Everything comes
/// from one seed, so a run can be repeated exactly.
public struct DaySimulation {
    public var tasks = 1_000
    public var intervals: ClosedRange<Int64> = 15 * 60...60 * 60
    public var duration: Int64 = 86_400
    /// Out of 100: NoData, NewData, the rest Failed.
    public var noDataPercent = 60
    public var newDataPercent = 35
    public var adaptive = true
    public var seed: UInt64 = 0xB6F_E7C4

    public init() {}

    public struct Outcome: Sendable {
        /// Times the engine's timer went off (each one a wake-up of the
        /// daemon, whether or not it found something to send).
        public var wakeUps = 0
        public var fetches = 0
        /// Each fetch's lateness after its due time, in microseconds.
        public var lateness: [Int64] = []
        /// Fetches sent before their due time, or later than 10 % of their
        /// effective interval after it (both must be empty).
        public var early: [String] = []
        public var late: [String] = []
    }

    /// Runs the day through a `FetchEngine`.
    public func run() throws -> Outcome {
        var random = SplitMix64(seed: seed)
        let clock = ManualClock()
        let start = clock.now()
        var config = DaemonConfig()
        config.tasksPerApp = tasks
        config.tasksPerUser = tasks
        config.minimumIntervalFloor = 1
        var quiet = Logger(label: "bgfetch.simulation")
        quiet.logLevel = .critical
        let engine = FetchEngine(config: config, store: MemoryTaskStore(), clock: clock, logger: quiet)
        var requested: [(TaskKey, UInt64)] = []
        engine.onEvent = { event in
            if case .fetchRequested(_, let task, let id) = event { requested.append((task, id)) }
        }
        try engine.restore(bootID: "simulation", isStillConnected: { _, _ in true })

        // Registrations at random phases, in time order.
        struct Plan { var key: TaskKey; var caller: Caller; var interval: UInt32; var at: Int64 }
        var plans: [Plan] = (0..<tasks).map { index in
            let interval = random.next(in: intervals)
            let app = AppKey(uid: 1000, appID: "org.example.App\(index % 50)")
            return Plan(
                key: TaskKey(app: app, name: "t\(index)"), caller: Caller(app: app, connection: ":1.\(index % 50)"),
                interval: UInt32(interval), at: start + random.next(in: 0...interval - 1) * 1_000_000)
        }
        plans.sort { $0.at < $1.at }
        var callers: [AppKey: Caller] = [:]
        var due: [TaskKey: (time: Int64, interval: UInt32)] = [:]
        func recordDue(_ key: TaskKey) {
            guard let info = engine.tasks(of: key.app).first(where: { $0.key == key }) else { return }
            due[key] = (info.nextFetch, info.effectiveInterval)
        }

        var outcome = Outcome()
        let end = start + duration * 1_000_000
        var next = 0
        while true {
            let registration = next < plans.count ? plans[next].at : Int64.max
            let deadline = engine.nextDeadline() ?? Int64.max
            let now = min(registration, deadline)
            guard now < end else { break }
            if now > clock.now() { clock.set(now) }
            if registration <= deadline {
                let plan = plans[next]
                next += 1
                callers[plan.key.app] = plan.caller
                try engine.register(
                    plan.caller, name: plan.key.name,
                    options: TaskOptions(minimumInterval: plan.interval, stopOnTerminate: false, adaptive: adaptive))
                recordDue(plan.key)
                continue
            }
            try engine.fireDue()
            outcome.wakeUps += 1
            let batch = requested
            requested.removeAll()
            for (key, id) in batch {
                outcome.fetches += 1
                if let expected = due[key] {
                    let lateness = now - expected.time
                    outcome.lateness.append(lateness)
                    if lateness < 0 { outcome.early.append("\(key) \(-lateness) µs early") }
                    if lateness > Int64(expected.interval) * 100_000 { outcome.late.append("\(key) \(lateness) µs late") }
                }
                let roll = Int(random.next() % 100)
                let result: FetchResult = roll < noDataPercent ? .noData : roll < noDataPercent + newDataPercent ? .newData : .failed
                try engine.finish(callers[key.app]!, requestID: id, result: result)
                recordDue(key)
            }
        }
        return outcome
    }

    /// The same timers as systemd runs them (`OnUnitActiveSec=` the interval,
    /// `AccuracySec=1min`): each elapse is moved to the next whole minute
    /// after a per-boot offset, which makes timers due in the same minute
    /// elapse together. Returns the distinct elapse times (wake-ups) and the
    /// fetches. The intervals and phases are drawn as in ``run()``.
    public func systemdTimers(accuracy: Int64 = 60) -> (wakeUps: Int, fetches: Int) {
        var random = SplitMix64(seed: seed)
        var schedule: [(interval: Int64, phase: Int64)] = []
        for _ in 0..<tasks {
            let interval = random.next(in: intervals)
            schedule.append((interval, random.next(in: 0...interval - 1)))
        }
        let offset = Int64(seed % UInt64(accuracy))  // systemd's per-boot perturbation
        var elapses: Set<Int64> = []
        var fetches = 0
        for (interval, phase) in schedule {
            var dueAt = phase + interval
            while true {
                let elapse = dueAt + ((offset - dueAt) % accuracy + accuracy) % accuracy
                guard elapse < duration else { break }
                elapses.insert(elapse)
                fetches += 1
                dueAt = elapse + interval
            }
        }
        return (elapses.count, fetches)
    }
}
