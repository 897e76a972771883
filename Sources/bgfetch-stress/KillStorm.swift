import DBus
import Foundation
import TestKit
import Glibc
import Synchronization

/// The kill -9 storm: eight clients change their tasks concurrently while the
/// daemon is killed at random moments and restarted. After each kill the
/// files hold, and after each restart the daemon reports, every acknowledged
/// change; `PRAGMA integrity_check` is ok.
struct KillStorm {
    let settings: Settings
    let report: PartReport

    func run() throws {
        let kills = settings.scaled(quick: 5, full: 60)
        let clientCount = 8
        let bus = try PrivateBus(kind: settings.bus)
        let daemon = try settings.startDaemon(on: bus)
        defer { daemon.stop() }
        let baseline = daemon.stats
        report.progress("daemon up (\(baseline?.description ?? "?")); \(clientCount) clients; \(kills) kills")

        let gate = Gate()
        var rng = settings.generator
        let workers = try (0..<clientCount).map { index in
            try KillWorker(index: index, address: bus.address, gate: gate, rng: rng.derived(index), report: report)
        }
        let threads = workers.map { worker in Thread { worker.loop() } }
        for thread in threads {
            thread.stackSize = 1 << 20
            thread.start()
        }
        defer {
            gate.stopAll()
            for worker in workers { worker.client.close() }
        }

        var survived = 0
        var integrityFailures: [String] = []
        var earlyKills = 0
        for cycle in 1...kills {
            // Let the clients work, then kill at a random moment.
            let delay = Double.random(in: 0.005...settings.scaled(quick: 0.5, full: 0.4), using: &rng)
            usleep(UInt32(delay * 1_000_000))
            daemon.kill9()
            gate.pauseAll(workers: clientCount)

            if settings.sabotageWAL { dropLastCommits(daemon.databasePath + "-wal") }
            // What the files hold, before anything reopens them.
            let snapshot = try SQLiteCheck.snapshot(of: daemon.databasePath)
            if snapshot.integrity != "ok" { integrityFailures.append("kill \(cycle): \(snapshot.integrity)") }
            for worker in workers { worker.verify(present: snapshot.tasks[worker.appID] ?? [], source: "the database after kill \(cycle)", resolve: false) }

            // Now and then kill it again while it starts up, before it serves.
            if settings.full, cycle % 7 == 0 {
                try daemon.launch()
                usleep(UInt32.random(in: 1_000...40_000, using: &rng))
                daemon.kill9()
                earlyKills += 1
            }
            try daemon.start()
            for worker in workers { worker.verifyAfterRestart(cycle: cycle) }
            survived += 1
            if cycle % max(1, kills / 10) == 0 || cycle == kills {
                let changes = Tally()
                for worker in workers { changes.merge(worker.outcomes) }
                report.progress("kill \(cycle)/\(kills) survived; calls so far: \(changes.description)")
            }
            gate.resumeAll()
        }
        gate.pauseAll(workers: clientCount)
        let final = daemon.stats

        report.check(integrityFailures.isEmpty, "PRAGMA integrity_check is ok after every kill", integrityFailures.prefix(3).joined(separator: "; "))
        var lost = 0
        let totals = Tally()
        for worker in workers {
            lost += worker.problems.total
            for (key, count) in worker.problems.all {
                report.check(false, "every acknowledged change is kept", "\(worker.appID): \(count)× \(key), e.g. \(worker.problems.examples(key))")
            }
            totals.merge(worker.outcomes)
        }
        if lost == 0 { report.check(true, "every acknowledged change is kept") }
        report.check(totals["acknowledged"] > kills * 4, "the clients got changes acknowledged between the kills", totals.description)
        report.figure("kills survived", "\(survived) of \(kills)" + (earlyKills > 0 ? " (+\(earlyKills) during start-up)" : ""))
        report.figure("calls tried", "\(totals.total): \(totals.description)")
        let checked = Tally()
        for worker in workers { checked.merge(worker.checked) }
        report.figure("task states checked", "\(checked.total) against the files after each kill and the daemon after each restart (acknowledged \(checked.description))")
        report.figure("daemon before/after", "\(baseline?.description ?? "?") → \(final?.description ?? "?") (a new process after each kill)")
    }
}

/// Cuts the last frames (4 KiB pages) off a WAL, losing its last commits:
/// what a daemon that acknowledged before its data was durable would lose.
private func dropLastCommits(_ wal: String) {
    let frame = 24 + 4096
    guard let size = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int), size > 32 + 12 * frame else { return }
    truncate(wal, off_t(size - 3 * frame))
}

/// Parks the workers between their calls while the controller kills, checks and restarts.
final class Gate: Sendable {
    private struct State { var paused = false, parked = 0, stopped = false }
    private let state = Mutex(State())
    /// Bumped on each restart, so a worker can tell whether the daemon changed under it.
    let generation = Atomic<Int>(0)

    /// Called by a worker between calls; returns false when it should stop.
    func checkpoint() -> Bool {
        var parked = false
        while true {
            let (paused, stopped) = state.withLock { s -> (Bool, Bool) in
                if s.paused && !parked {
                    s.parked += 1
                    parked = true
                } else if !s.paused && parked {
                    s.parked -= 1
                    parked = false
                }
                return (s.paused, s.stopped)
            }
            if stopped {
                if parked { state.withLock { $0.parked -= 1 } }
                return false
            }
            if !paused && !parked { return true }
            usleep(1_000)
        }
    }

    func pauseAll(workers: Int) {
        state.withLock { $0.paused = true }
        let deadline = Clocks.now + 60
        while state.withLock({ $0.parked }) < workers, Clocks.now < deadline { usleep(1_000) }
    }

    func resumeAll() {
        generation.add(1, ordering: .relaxed)
        state.withLock { $0.paused = false }
    }

    func stopAll() { state.withLock { $0.stopped = true; $0.paused = false } }
}

/// One client of the storm: its own connection and name, and what it knows
/// of its tasks: present, absent, or unknown (a call whose reply never came).
///
/// `@unchecked Sendable`: its mutable state (generator, expectations) is
/// touched only by its own worker thread; what the connection's loop records
/// goes through `requested`, which is locked.
final class KillWorker: @unchecked Sendable {
    let client: ServiceClient
    let appID: String
    let outcomes = Tally()
    let problems = Tally()
    /// Task states compared with what the files or the daemon held: definite (known present/absent) and unknown.
    let checked = Tally()
    private let gate: Gate
    private var rng: SplitMix64
    private let names = (0..<12).map { "task\($0)" }
    /// Which presences each task may have: [true], [false] or both.
    private var allowed: [String: Set<Bool>] = [:]
    /// Request ids whose FinishFetch was acknowledged since the last check.
    private var finished: [UInt64] = []
    private let requested = Locked<Set<UInt64>>([])

    init(index: Int, address: String, gate: Gate, rng: SplitMix64, report: PartReport) throws {
        appID = "org.stress.kill.c\(index)"
        self.gate = gate
        self.rng = rng
        let requested = self.requested
        client = try ServiceClient(address: address, name: appID, threadName: "kill-\(index)") { message in
            guard message.member == "FetchRequested", let id = message.arguments.last?.uint64Value else { return }
            requested.withLock { _ = $0.insert(id) }
        }
        for name in names { allowed[name] = [false] }
    }

    func loop() {
        while gate.checkpoint() {
            step()
        }
    }

    private func step() {
        let name = names.randomElement(using: &rng)!
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<45:
            let stop = Bool.random(using: &rng)
            let options = DBusValue.vardict(.options(
                interval: [1, 60, 3600].randomElement(using: &rng), stopOnTerminate: stop,
                startOnBoot: stop ? nil : Bool.random(using: &rng)))
            record(client.result("RegisterTask", [.string(name), options]), names: [name], present: true)
        case 45..<70:
            let result = client.result("UnregisterTask", [.string(name)])
            if case .failure(let error) = result, error.name.hasSuffix("NoSuchTask") {
                expectAbsent(name, "UnregisterTask said NoSuchTask")
            }
            record(result, names: [name], present: false)
        case 70..<95:
            triggerAndFinish(name)
        default:
            record(client.result("UnregisterAllTasks"), names: names, present: false)
        }
    }

    private func triggerAndFinish(_ name: String) {
        let generation = gate.generation.load(ordering: .relaxed)
        let result = client.result("TriggerFetch", [.string(name)])
        guard case .success(let values) = result, let id = values.first?.uint64Value else {
            if case .failure(let error) = result, error.name.hasSuffix("NoSuchTask") {
                expectAbsent(name, "TriggerFetch said NoSuchTask")
            }
            record(result.map { _ in [] }, names: [], present: true)
            return
        }
        outcomes.add("acknowledged")
        // TriggerFetch binds the task, as RegisterTask does: it is there.
        allowed[name] = [true]
        let deadline = Clocks.now + 2
        while !requested.withLock({ $0.contains(id) }), Clocks.now < deadline { usleep(1_000) }
        let finish = client.result("FinishFetch", [.uint64(id), .uint32(UInt32.random(in: 1...3, using: &rng))])
        switch finish {
        case .success:
            outcomes.add("acknowledged")
            finished.append(id)
        case .failure(let error) where error.isFromBus:
            outcomes.add(error.neverDelivered ? "not delivered" : "unknown")
        case .failure(let error):
            outcomes.add("refused")
            // Refused without a restart in between: the request the daemon just gave is unknown to it.
            if gate.generation.load(ordering: .relaxed) == generation, !requested.withLock({ $0.contains(id) }) {
                problems.add("FetchRequested never came for a triggered fetch", example: "\(name) request \(id)")
            } else if gate.generation.load(ordering: .relaxed) == generation {
                problems.add("FinishFetch refused for the request just triggered", example: "\(name) request \(id): \(error)")
            }
        }
    }

    private func expectAbsent(_ name: String, _ what: String) {
        if allowed[name] == [true] {
            problems.add("an acknowledged registration was lost", example: "\(name): \(what)")
        }
    }

    /// Applies a call's outcome to what the worker knows.
    private func record(_ result: Result<[DBusValue], DBusError>, names: [String], present: Bool) {
        switch result {
        case .success:
            outcomes.add("acknowledged")
            for name in names { allowed[name] = [present] }
        case .failure(let error) where error.neverDelivered:
            outcomes.add("not delivered")
            usleep(2_000)
        case .failure(let error) where error.isFromBus:
            outcomes.add("unknown")
            for name in names { allowed[name, default: []].insert(present) }
        case .failure(let error):
            outcomes.add("refused")
            if !error.name.hasSuffix("NoSuchTask") {
                problems.add("a valid call was refused", example: "\(error)")
            }
            if error.name.hasSuffix("NoSuchTask") { for name in names { allowed[name] = [false] } }
        }
    }

    /// Compares the tasks found with what was acknowledged; with `resolve`,
    /// unknown outcomes take the value found.
    func verify(present: Set<String>, source: String, resolve: Bool) {
        for name in names {
            let isThere = present.contains(name)
            let may = allowed[name] ?? [false]
            checked.add(may.count == 2 ? "unknown" : may.contains(true) ? "present" : "absent")
            if !may.contains(isThere) {
                problems.add(
                    isThere ? "an acknowledged unregistration was lost" : "an acknowledged registration was lost",
                    example: "\(name) \(isThere ? "present" : "absent") in \(source)")
            }
            if resolve { allowed[name] = [isThere] }
        }
    }

    /// After a restart: the daemon's view matches, and every acknowledged
    /// FinishFetch stays finished.
    func verifyAfterRestart(cycle: Int) {
        switch Result(catching: { () throws(DBusError) in try client.tasks() }) {
        case .success(let tasks): verify(present: Set(tasks.keys), source: "GetRegisteredTasks after restart \(cycle)", resolve: true)
        case .failure(let error): problems.add("GetRegisteredTasks failed after a restart", example: "\(error)")
        }
        for id in finished {
            if case .success = client.result("FinishFetch", [.uint64(id), .uint32(1)]) {
                problems.add("an acknowledged FinishFetch was lost (the fetch was open again)", example: "request \(id) after restart \(cycle)")
            }
        }
        finished.removeAll()
        requested.withLock { $0.removeAll() }
    }
}
