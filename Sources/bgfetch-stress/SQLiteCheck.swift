import Foundation
import TestKit

/// Reads a copy of the daemon's database with SQLite itself: the check that
/// the files on disk, not only the daemon's memory, hold what was acknowledged.
enum SQLiteCheck {
    struct Snapshot {
        var integrity: String
        /// Task names by app id.
        var tasks: [String: Set<String>]
    }

    /// Copies `database` (with its WAL, not its shared-memory index) to a
    /// temporary folder, lets SQLite recover it there, and reads it.
    static func snapshot(of database: String) throws -> Snapshot {
        let directory = makeTemporaryDirectory("bgfetch-stress-db")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let copy = directory + "/copy.db"
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: database + suffix) {
            try FileManager.default.copyItem(atPath: database + suffix, toPath: copy + suffix)
        }
        let integrity = try query(copy, "PRAGMA integrity_check").map { $0.first ?? "" }.joined(separator: "; ")
        var tasks: [String: Set<String>] = [:]
        for row in try query(copy, "SELECT app_id, name FROM tasks") where row.count == 2 {
            tasks[row[0], default: []].insert(row[1])
        }
        return Snapshot(integrity: integrity, tasks: tasks)
    }

    /// Runs one statement and returns its rows as text.
    static func query(_ path: String, _ sql: String) throws -> [[String]] {
        try SQLiteFile(path: path).rows(sql)
    }

    /// Checkpoints the WAL into the main file and truncates the WAL (the daemon must be stopped).
    static func checkpoint(_ path: String) throws {
        _ = try query(path, "PRAGMA wal_checkpoint(TRUNCATE)")
    }
}
