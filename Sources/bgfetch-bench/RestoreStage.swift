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
        var log: String
    }

    static let databaseName = "bgfetch.db"

    /// Lets bgfetchd create its schema in a fresh folder, then measures a
    /// start on that empty state (the floor of any start). Returns the empty
    /// database, to be copied and seeded by later stages.
    static func emptyState(_ lab: Lab, settle: Double) throws(HarnessError) -> (database: String, start: Start) {
        let folder = try lab.folder("empty")
        try lab.startDaemon(stateDirectory: folder).stop()
        let start = try measure(lab, folder: folder, settle: settle)
        let database = folder + "/" + databaseName
        try checkpoint(database)
        return (database, start)
    }

    /// Copies `database` into a new state folder.
    static func stateFolder(_ lab: Lab, _ label: String, from database: String) throws(HarnessError) -> String {
        let folder = try lab.folder(label)
        do {
            try FileManager.default.copyItem(atPath: database, toPath: folder + "/" + databaseName)
        } catch {
            throw HarnessError("cannot copy \(database): \(error.localizedDescription)")
        }
        return folder
    }

    /// Folds the WAL into the database file, so that one file is the whole state.
    static func checkpoint(_ database: String) throws(HarnessError) {
        let file = try SQLiteFile(path: database)
        try file.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        file.close()
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
        let now = Clock.unixMicros()
        try StateSeeder.seed(path: database, count: count) { index in
            let app = index / perApp
            return StateSeeder.Task(
                appID: "\(Service.benchAppPrefix).Restore\(app)", name: "task\(index % perApp)", interval: 3600,
                registeredAt: now - 86_400_000_000, lastFetch: now - 600_000_000,
                binding: departedBindings ? ":9.\(app)" : nil)
        }
        try checkpoint(database)
        return database
    }

    /// Starts bgfetchd on the state in `folder`, waits `settle` seconds,
    /// reads its memory and stops it.
    static func measure(_ lab: Lab, folder: String, newBoot: Bool = false, settle: Double) throws(HarnessError) -> Start {
        let daemon = try lab.startDaemon(stateDirectory: folder, newBoot: newBoot, timeout: 300)
        Clock.sleep(seconds: settle)
        let memory = ProcStats.memory(daemon.pid)
        try daemon.stop()
        guard let memory else { throw HarnessError("cannot read /proc/\(daemon.pid)/status") }
        return Start(seconds: daemon.startSeconds, peakKiB: memory.peakKiB, currentKiB: memory.currentKiB, log: daemon.log)
    }
}
