import Foundation
import TestKit

/// Reads a copy of the daemon's database with SQLite itself: the check that
/// the files on disk, not only the daemon's memory, hold what was acknowledged.
enum SQLiteCheck {
    /// Copies `database` (with its WAL, not its shared-memory index) to a
    /// temporary folder, lets SQLite recover it there, and reads its
    /// `PRAGMA integrity_check` and its task names by app id.
    static func snapshot(of database: String) throws -> (integrity: String, tasks: [String: Set<String>]) {
        let directory = try PrivateBus.makeTemporaryDirectory("bgfetch-stress-db")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let copy = directory + "/copy.db"
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: database + suffix) {
            try FileManager.default.copyItem(atPath: database + suffix, toPath: copy + suffix)
        }
        let file = try SQLiteFile(path: copy)
        let integrity = try file.rows("PRAGMA integrity_check").map { $0.first ?? "" }.joined(separator: "; ")
        var tasks: [String: Set<String>] = [:]
        for row in try file.rows("SELECT app_id, name FROM tasks") where row.count == 2 {
            tasks[row[0], default: []].insert(row[1])
        }
        return (integrity, tasks)
    }
}
