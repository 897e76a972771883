import TestKit
import DBus

/// Durable RegisterTask calls against raw SQLite commits, in alternating windows.
extension Stages {
    // MARK: RegisterTask

    func registers(_ template: String) throws(HarnessError) {
        var floor = try SQLiteFloor(directory: try lab.folder("sqlite-floor"))
        defer { floor.database.close() }
        detail(
            "\(scale.registerRounds) round(s): raw SQLite single-row commits (WAL, synchronous=FULL) for "
                + "\(Format.fixed(scale.floorSeconds, 1)) s, then RegisterTask for \(Format.fixed(scale.registerSeconds, 1)) s, ...; "
                + "each round's rate is divided by the mean of the raw windows on either side")
        detail("1 client (its own app) registers new tasks back to back")
        let one = try registerRounds(template, clients: 1, label: "register-1", floor: &floor)
        report.record(
            .registerOne,
            Measurement(
                measured: Format.rate(one.rate), floor: "SQLite " + Format.rate(one.floor), ratio: one.ratio, checked: one.ratio))
        progress("[5/\(Self.count)] durable RegisterTask, \(scale.clients) concurrent clients, each its own app")
        let many = try registerRounds(template, clients: scale.clients, label: "register-\(scale.clients)", floor: &floor)
        report.record(
            .registerMany,
            Measurement(
                measured: Format.rate(many.rate), floor: "SQLite " + Format.rate(many.floor), ratio: many.ratio,
                checked: many.ratio))
    }

    /// Medians over the rounds: RegisterTask calls per second, raw commits
    /// per second, and the per-round ratio.
    func registerRounds(
        _ template: String, clients count: Int, label: String, floor: inout SQLiteFloor
    ) throws(HarnessError) -> (rate: Double, floor: Double, ratio: Double) {
        let daemon = try lab.startDaemon(stateDirectory: try RestoreStage.stateFolder(lab, label, from: template))
        var clients: [ServiceClient] = []
        defer { for client in clients { client.close() } }
        for index in 0..<count {
            let app = "\(Lab.appPrefix).\(count == 1 ? "Solo" : "App\(index)")"
            clients.append(try lab.connect(app: app, thread: "bench-reg-\(index)"))
        }
        var floorCPU: [Double] = []
        func floorWindow() throws(HarnessError) -> Double {
            let window = try floor.commitsPerSecond(for: scale.floorSeconds)
            floorCPU.append(window.cpuMicros)
            return window.rate
        }
        var floors = [try floorWindow()]
        var rates: [Double] = []
        var ratios: [Double] = []
        var next = 0
        for round in 1...scale.registerRounds {
            let cpuBefore = ProcStats.cpuNanos(daemon.livePID)
            let outcome = try RegisterStage.run(clients, seconds: scale.registerSeconds, firstIndex: next)
            let cpuAfter = ProcStats.cpuNanos(daemon.livePID)
            next += outcome.calls
            var cpu = ""
            if let cpuBefore, let cpuAfter {
                cpu = "; bgfetchd CPU \(Format.micros(Double(cpuAfter - cpuBefore) / 1000 / Double(outcome.calls)))/call"
            }
            floors.append(try floorWindow())
            let around = (floors[round - 1] + floors[round]) / 2
            rates.append(outcome.callsPerSecond)
            ratios.append(outcome.callsPerSecond / around)
            detail(
                "round \(round): SQLite \(Format.rate(floors[round - 1])), RegisterTask \(Format.rate(outcome.callsPerSecond)) "
                    + "(round trip median \(Format.millis(outcome.latency.median)), p99 \(Format.millis(outcome.latency.percentile(99)))), "
                    + "SQLite \(Format.rate(floors[round])): ratio \(Format.fixed(outcome.callsPerSecond / around, 2))\(cpu)")
        }
        // Proof that each client was taken for its own app: the distinct app ids that hold tasks.
        let held = try HarnessError.wrapping("ListTasks failed") { try clients[0].allTasks() }
        try daemon.stopCleanly()
        detail(
            "the daemon ended with \(Format.count(held.values.reduce(0) { $0 + $1.count })) tasks of \(held.count) app(s); "
                + "raw SQLite used \(Format.micros(Sample(floorCPU).median)) of CPU per commit")
        guard held.count == count else {
            throw HarnessError("the daemon saw \(held.count) app(s), not \(count): is the bench running inside an app's systemd scope?")
        }
        return (Sample(rates).median, Sample(floors).median, Sample(ratios).median)
    }
}
