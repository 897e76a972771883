import DBus
import Foundation
import TestKit

/// The run: each stage prints a progress line, then what it measured, and
/// records its figures. A stage that fails marks its figures unmeasured and
/// the run goes on.
struct Stages {
    let lab: Lab
    let scale: Scale
    /// The stages to run (stage 1 always runs: the others start from its state); nil: all.
    var only: Set<Int>? = nil
    let report = Report()
    static let count = 10

    func runAll() -> Report {
        var empty: (database: String, start: RestoreStage.Start)?
        attempt(1, "bgfetchd on empty state (the floor of a start)", [.restore, .restoreMemory, .dueLateness, .idleSwitches]) {
            () throws(HarnessError) in
            let made = try RestoreStage.emptyState(lab, settle: scale.settleSeconds)
            empty = made
            detail("started in \(Format.millis(made.start.seconds * 1000)), VmHWM \(Format.mebibytes(made.start.peakKiB))")
        }
        let template = empty?.database
        attempt(2, "round trips and throughput: GetStatus against Peer.Ping", [.roundTrip, .throughput]) { () throws(HarnessError) in
            guard let template else { throw HarnessError("no empty state") }
            try calls(template)
        }
        attempt(4, "durable RegisterTask against raw SQLite commits", [.registerOne, .registerMany]) { () throws(HarnessError) in
            guard let template else { throw HarnessError("no empty state") }
            try registers(template)
        }
        attempt(6, "restore \(Format.count(scale.restoreTasks)) tasks", [.restore, .restoreMemory, .restoreNewBoot, .restoreDeparted]) {
            () throws(HarnessError) in
            guard let empty else { throw HarnessError("no empty state") }
            try restores(empty.database, floor: empty.start)
        }
        attempt(7, "\(Format.count(scale.dueTasks)) tasks due at the same instant", [.dueLateness]) { () throws(HarnessError) in
            guard let template else { throw HarnessError("no empty state") }
            try due(template)
        }
        attempt(
            8, "idle for \(Format.fixed(scale.idleSeconds, 0)) s with \(Format.count(scale.idleTasks)) tasks registered, none due",
            [.idleSwitches]
        ) { () throws(HarnessError) in
            guard let template else { throw HarnessError("no empty state") }
            try idle(template)
        }
        attempt(
            9, "\(Format.count(scale.releaseTasks)) waiting tasks released by one PropertiesChanged",
            [.releaseWakeUps, .releaseTime]
        ) { () throws(HarnessError) in
            let outcome = try ReleaseStage.run(lab, count: scale.releaseTasks)
            detail(
                "\(outcome.wakeUps) wake-up(s); last FetchRequested \(Format.millis(outcome.lastArrival)) after the change; "
                    + "a plain client's \(Format.count(scale.releaseTasks)) signals: \(Format.millis(outcome.busOnly))")
            report.record(.releaseWakeUps, Measurement(measured: "\(outcome.wakeUps)", checked: Double(outcome.wakeUps)))
            report.record(
                .releaseTime,
                Measurement(
                    measured: Format.millis(outcome.lastArrival), floor: "plain client " + Format.millis(outcome.busOnly),
                    ratio: outcome.lastArrival / outcome.busOnly, checked: outcome.lastArrival / outcome.busOnly))
        }
        attempt(
            10, "a day of \(Format.count(scale.dayTasks)) tasks through the engine on a simulated clock",
            [.dayWakeUps, .dayAgainstSystemd, .dayOutOfWindow, .dayAdaptiveFetches]
        ) { () throws(HarnessError) in
            try day()
        }
        return report
    }

    /// Batching and the adaptive policy, measured on the engine itself: a
    /// simulated day, with systemd's timer coalescing simulated the same way.
    private func day() throws(HarnessError) {
        var simulation = DaySimulation()
        simulation.tasks = scale.dayTasks
        let adaptive: DaySimulation.Outcome
        let fixed: DaySimulation.Outcome
        do {
            adaptive = try simulation.run()
            simulation.adaptive = false
            fixed = try simulation.run()
        } catch {
            throw HarnessError("the simulation failed: \(error)")
        }
        let systemd = simulation.systemdTimers()
        let lateness = Sample(adaptive.lateness.map { Double($0) / 1_000_000 })
        detail(
            "intervals 15–60 min at random phases; answers 60 % NoData, 35 % NewData, 5 % Failed; "
                + "lateness median \(Format.fixed(lateness.median, 1)) s, max \(Format.fixed(lateness.max, 1)) s")
        detail(
            "bgfetchd: \(Format.count(adaptive.wakeUps)) wake-ups for \(Format.count(adaptive.fetches)) fetches (adaptive), "
                + "\(Format.count(fixed.wakeUps)) for \(Format.count(fixed.fetches)) (fixed); systemd timers (AccuracySec=1min): "
                + "\(Format.count(systemd.wakeUps)) wake-ups for \(Format.count(systemd.fetches)) fetches")
        report.record(
            .dayWakeUps,
            Measurement(
                measured: Format.count(adaptive.wakeUps), floor: "\(Format.count(adaptive.fetches)) fetches",
                ratio: Double(adaptive.wakeUps) / Double(adaptive.fetches), checked: Double(adaptive.wakeUps) / Double(adaptive.fetches)))
        report.record(
            .dayAgainstSystemd,
            Measurement(
                measured: Format.count(fixed.wakeUps), floor: "systemd \(Format.count(systemd.wakeUps))",
                ratio: Double(fixed.wakeUps) / Double(systemd.wakeUps), checked: Double(fixed.wakeUps) / Double(systemd.wakeUps)))
        let outside = adaptive.early.count + adaptive.late.count + fixed.early.count + fixed.late.count
        report.record(.dayOutOfWindow, Measurement(measured: "\(outside)", checked: Double(outside)))
        report.record(
            .dayAdaptiveFetches,
            Measurement(
                measured: Format.count(adaptive.fetches), floor: "fixed \(Format.count(fixed.fetches))",
                ratio: Double(adaptive.fetches) / Double(fixed.fetches), checked: 0))
    }

    private func attempt(_ stage: Int, _ title: String, _ figures: [Figure], _ body: () throws(HarnessError) -> Void) {
        // Stages 2 and 4 also print stages 3 and 5.
        let covered = stage == 2 || stage == 4 ? [stage, stage + 1] : [stage]
        if let only, stage > 1, only.isDisjoint(with: covered) {
            progress("[\(stage)/\(Self.count)] \(title): skipped (--only)")
            for figure in figures { report.skip(figure) }
            return
        }
        progress("[\(stage)/\(Self.count)] \(title)")
        do throws(HarnessError) {
            try body()
        } catch {
            progress("      FAILED: \(error)")
            for figure in figures { report.fail(figure, error.description) }
        }
    }

    func detail(_ line: String) { progress("      " + line) }

    // MARK: Calls

    private func calls(_ template: String) throws(HarnessError) {
        let daemon = try lab.startDaemon(stateDirectory: try RestoreStage.stateFolder(lab, "calls", from: template))
        detail("\(Format.count(scale.roundTrips)) GetStatus and \(Format.count(scale.roundTrips)) Ping, sequential, interleaved")
        let trips = try CallStages.roundTrips(address: lab.bus.address, count: scale.roundTrips)
        detail(
            "GetStatus median \(Format.micros(trips.getStatus.median)) (p99 \(Format.micros(trips.getStatus.percentile(99)))), "
                + "Ping median \(Format.micros(trips.ping.median)) (p99 \(Format.micros(trips.ping.percentile(99))))")
        report.record(
            .roundTrip,
            Measurement(
                measured: Format.micros(trips.getStatus.median), floor: "Ping " + Format.micros(trips.ping.median),
                ratio: trips.getStatus.median / trips.ping.median, checked: trips.getStatus.median / trips.ping.median))

        progress("[3/\(Self.count)] throughput: \(scale.throughputRounds) round(s) of \(Format.count(scale.throughputCalls)) calls of each, \(scale.inFlight) in flight on one connection (a C libdbus client)")
        var getStatus: [CallStages.Throughput] = []
        var ping: [CallStages.Throughput] = []
        var ratios: [Double] = []
        for round in 1...scale.throughputRounds {
            func measure(_ kind: Bool) throws(HarnessError) -> CallStages.Throughput {
                try CallStages.throughput(
                    address: lab.bus.address, daemonPID: daemon.livePID, total: scale.throughputCalls, inFlight: scale.inFlight,
                    calling: kind ? .getStatus : .ping)
            }
            // Alternate which goes first, so drift hits both alike.
            let statusFirst = round % 2 == 0
            let first = try measure(statusFirst)
            let second = try measure(!statusFirst)
            let (statusRound, pingRound) = statusFirst ? (first, second) : (second, first)
            ping.append(pingRound)
            getStatus.append(statusRound)
            ratios.append(statusRound.callsPerSecond / pingRound.callsPerSecond)
            detail(
                "round \(round): Ping \(Format.rate(pingRound.callsPerSecond))\(cpu(pingRound)), "
                    + "GetStatus \(Format.rate(statusRound.callsPerSecond))\(cpu(statusRound)): "
                    + "ratio \(Format.fixed(ratios.last!, 2))")
        }
        try daemon.stopCleanly()
        let statusRate = Sample(getStatus.map(\.callsPerSecond)).median
        let pingRate = Sample(ping.map(\.callsPerSecond)).median
        let ratio = Sample(ratios).median
        detail("the figure is the median of the rounds' ratios; rates are the medians of the rounds")
        report.record(
            .throughput,
            Measurement(measured: Format.rate(statusRate), floor: "Ping " + Format.rate(pingRate), ratio: ratio, checked: ratio))
    }

    private func cpu(_ round: CallStages.Throughput) -> String {
        round.daemonMicrosPerCall.map { " (bgfetchd CPU \(Format.micros($0))/call)" } ?? ""
    }
}
