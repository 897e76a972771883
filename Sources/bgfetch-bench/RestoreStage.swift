import Foundation
import TestKit

/// Daemon starts on stored state: from posix_spawn until the bus says the
/// name is owned, and the memory it took.
enum RestoreStage {
    struct Start {
        var seconds: Double
        /// VmHWM and VmRSS once the daemon has settled (its first deadline computed).
        var peakKiB: Int
        var currentKiB: Int
    }

    static let databaseName = "bgfetch.db"

    /// Lets bgfetchd create its schema in a fresh folder, then measures a
    /// start on that empty state (the floor of any start). Returns the empty
    /// database, to be copied and seeded by later stages.
    static func emptyState(_ lab: Lab, settle: Double) throws(HarnessError) -> (database: String, start: Start) {
        let folder = try lab.folder("empty")
        try lab.startDaemon(stateDirectory: folder).stopCleanly()
        let start = try measure(lab, folder: folder, settle: settle)
        let database = folder + "/" + databaseName
        try SQLiteFile.checkpoint(database)
        return (database, start)
    }

    /// Copies `database` into a new state folder.
    static func stateFolder(_ lab: Lab, _ label: String, from database: String) throws(HarnessError) -> String {
        let folder = try lab.folder(label)
        try HarnessError.wrapping("cannot copy \(database)") { try FileManager.default.copyItem(atPath: database, toPath: folder + "/" + databaseName) }
        return folder
    }

    /// A copy of `template` with `count` tasks, `perApp` to an app, seeded
    /// as apps that registered them with `stopOnTerminate` false and left;
    /// due in 50 minutes. With `departedBindings` each keeps the binding of
    /// a connection that is gone from the bus (as after the daemon was down
    /// while its apps quit).
    static func seeded(
        _ lab: Lab, template: String, count: Int, perApp: Int, departedBindings: Bool
    ) throws(HarnessError) -> String {
        let folder = try stateFolder(lab, departedBindings ? "seed-departed" : "seed", from: template)
        let database = folder + "/" + databaseName
        let now = Clocks.unixMicros
        try StateSeeder.seed(path: database, count: count) { index in
            let app = index / perApp
            return StateSeeder.Task(
                appID: "\(Lab.appPrefix).Restore\(app)", name: "task\(index % perApp)", interval: 3600,
                registeredAt: now - 86_400_000_000, lastFetch: now - 600_000_000,
                binding: departedBindings ? ":9.\(app)" : nil)
        }
        try SQLiteFile.checkpoint(database)
        return database
    }

    /// Starts bgfetchd on the state in `folder`, waits `settle` seconds,
    /// reads its memory and stops it.
    static func measure(_ lab: Lab, folder: String, newBoot: Bool = false, settle: Double) throws(HarnessError) -> Start {
        let daemon = try lab.startDaemon(stateDirectory: folder, newBoot: newBoot, timeout: 300)
        Thread.sleep(forTimeInterval: settle)
        let pid = daemon.livePID, memory = ProcStats.memory(pid)
        try daemon.stopCleanly()
        guard let memory else { throw HarnessError("cannot read /proc/\(pid)/status") }
        return Start(seconds: daemon.startSeconds ?? 0, peakKiB: memory.peakKiB, currentKiB: memory.currentKiB)
    }
}
