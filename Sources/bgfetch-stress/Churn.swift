import DBus
import Foundation
import TestKit
import Glibc
import Synchronization

/// Churn: thousands of connect → register → disconnect cycles. Afterwards the
/// daemon holds no task of the departed connections, and its RSS and open
/// descriptors are back within 10 % of the baseline taken after a warm-up.
struct Churn {
    let settings: Settings
    let report: PartReport

    func run() throws {
        let cycles = settings.scaled(quick: 500, full: 10_000)
        let warmUp = max(100, cycles / 10)
        let workers = 4
        let bus = try PrivateBus(kind: settings.bus)
        let daemon = try settings.startDaemon(on: bus)
        defer { daemon.stop() }
        let control = try ServiceClient(address: bus.address, name: "org.stress.churn.control", threadName: "churn-control")
        defer { control.close() }
        let start = daemon.stats
        report.progress("daemon up (\(start?.description ?? "?")); \(warmUp) warm-up cycles, then \(cycles)")

        let failures = Tally()
        runCycles(0..<warmUp, workers: workers, address: bus.address, failures: failures)
        try settle(control, daemon)
        let baseline = daemon.stats
        report.progress("baseline after warm-up: \(baseline?.description ?? "?")")

        let started = Clocks.now
        var peak = baseline ?? ProcStats(rssKiB: 0, fds: 0)
        let chunk = max(1, cycles / 10)
        var done = 0
        while done < cycles {
            let next = min(cycles, done + chunk)
            runCycles((warmUp + done)..<(warmUp + next), workers: workers, address: bus.address, failures: failures)
            done = next
            peak = peak.peak(daemon.stats)
            report.progress(String(format: "%d/%d cycles (%.0f/s); daemon %@", done, cycles, Double(done) / (Clocks.now - started), daemon.stats?.description ?? "gone"))
            guard daemon.isAlive else { break }
        }
        report.check(daemon.isAlive, "the daemon survives the churn", "log tail:\n\(daemon.logTail())")
        try settle(control, daemon)
        let after = daemon.stats

        report.check(failures.total == 0, "every cycle's calls succeeded", "\(failures.description); e.g. \(failures.all.keys.flatMap { failures.examples($0) }.prefix(3))")
        if let baseline, let after {
            let rssLimit = baseline.rssKiB + baseline.rssKiB / 10
            let fdLimit = baseline.fds + max(1, baseline.fds / 10)
            report.check(after.rssKiB <= rssLimit, "RSS returns to within 10 % of the baseline", "baseline \(baseline), after \(after)")
            report.check(after.fds <= fdLimit, "open descriptors return to within 10 % of the baseline", "baseline \(baseline.fds), after \(after.fds)")
        }
        report.figure("cycles", "\(cycles) after \(warmUp) warm-up (\(workers) at a time), \(String(format: "%.0f", Double(cycles) / (Clocks.now - started)))/s")
        report.figure("daemon start/baseline/peak/after", "\(start?.description ?? "?") / \(baseline?.description ?? "?") / \(peak.description) / \(after?.description ?? "?")")
    }

    /// Connect, take a name, register (every fifth: with stopOnTerminate
    /// false, then unregister), disconnect.
    private func runCycles(_ range: Range<Int>, workers: Int, address: String, failures: Tally) {
        let next = Atomic<Int>(range.lowerBound)
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                while true {
                    let i = next.add(1, ordering: .relaxed).oldValue
                    guard i < range.upperBound else { return }
                    Self.cycle(i, address: address, failures: failures)
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
    }

    private static func cycle(_ i: Int, address: String, failures: Tally) {
        let client: ServiceClient
        do {
            client = try ServiceClient(address: address, name: "org.stress.churn.c\(i)", threadName: "churn")
        } catch {
            failures.add("connect", example: "\(error)")
            return
        }
        defer { client.close() }
        let keep = i % 5 == 0
        let name = "task\(i % 7)"
        if case .failure(let error) = client.result("RegisterTask", [.string(name), .vardict(.options(interval: 3600, stopOnTerminate: !keep))]) {
            failures.add("RegisterTask", example: "\(error)")
        }
        if keep, case .failure(let error) = client.result("UnregisterTask", [.string(name)]) {
            failures.add("UnregisterTask", example: "\(error)")
        }
    }

    /// Waits until the daemon holds no task of the churned apps and is quiet.
    private func settle(_ control: ServiceClient, _ daemon: DaemonUnderTest) throws {
        let left = control.tasksLeft(timeout: 30, every: 0.05)
        report.check(left == 0, "no task of a departed connection is left", "\(left) left")
        usleep(300_000)
    }
}
