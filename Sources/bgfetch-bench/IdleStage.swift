import Foundation
import TestKit

/// The daemon's cost while nothing is due: context switches of all its
/// threads, read from `/proc/PID/task/*/status`, over a quiet window in
/// which nothing on the bus talks to it.
enum IdleStage {
    struct Outcome {
        var switches: Int
        var threads: Int
        /// Threads that switched, with how often.
        var busyThreads: [String]
    }

    static func run(_ lab: Lab, template: String, tasks: Int, apps: Int, settle: Double, seconds: Double) throws(HarnessError) -> Outcome {
        let folder = try RestoreStage.stateFolder(lab, "idle", from: template)
        let now = Clocks.unixMicros
        try StateSeeder.seed(path: folder + "/" + RestoreStage.databaseName, count: tasks) { index in
            StateSeeder.Task(
                appID: "\(Lab.appPrefix).Idle\(index % apps)", name: "idle\(index)", interval: 3600,
                registeredAt: now - 60_000_000, lastFetch: now, binding: nil)
        }
        let daemon = try lab.startDaemon(stateDirectory: folder)
        Thread.sleep(forTimeInterval: settle)
        let pid = daemon.livePID
        let before = ProcStats.contextSwitches(pid)
        Thread.sleep(forTimeInterval: seconds)
        let after = ProcStats.contextSwitches(pid)
        try daemon.stopCleanly()
        guard !before.isEmpty, !after.isEmpty else { throw HarnessError("cannot read /proc/\(pid)/task") }
        var total = 0
        var busy: [String] = []
        for tid in Set(before.keys).union(after.keys).sorted() {
            let delta = (after[tid]?.total ?? 0) - (before[tid]?.total ?? 0)
            guard delta != 0 else { continue }
            total += max(0, delta)
            let name = after[tid]?.name ?? before[tid]?.name ?? "?"
            busy.append("\(name)[\(tid)] \(delta)")
        }
        return Outcome(switches: total, threads: after.count, busyThreads: busy)
    }
}
