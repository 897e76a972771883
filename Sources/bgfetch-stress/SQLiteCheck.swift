import CSQLite
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
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw HarnessError("sqlite: \(path): \(message)")
        }
        defer { sqlite3_close_v2(handle) }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw HarnessError("sqlite: \(sql): \(String(cString: sqlite3_errmsg(handle)))")
        }
        defer { sqlite3_finalize(statement) }
        var rows: [[String]] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw HarnessError("sqlite: \(sql): \(String(cString: sqlite3_errmsg(handle)))") }
            rows.append((0..<sqlite3_column_count(statement)).map { column in
                sqlite3_column_text(statement, column).map { String(cString: $0) } ?? ""
            })
        }
        return rows
    }

    /// Checkpoints the WAL into the main file and truncates the WAL (the daemon must be stopped).
    static func checkpoint(_ path: String) throws {
        _ = try query(path, "PRAGMA wal_checkpoint(TRUNCATE)")
    }
}
