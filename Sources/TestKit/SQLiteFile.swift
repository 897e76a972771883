import CSQLite
import Foundation

/// One SQLite connection for the harness: the bench's raw floor, the stress
/// suite's reading of the daemon's files. (The daemon has its own, in the core.)
public final class SQLiteFile {
    private var handle: OpaquePointer?
    public let path: String

    public init(path: String) throws(HarnessError) {
        self.path = path
        let rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(rc)"
            sqlite3_close(handle)
            handle = nil
            throw HarnessError("cannot open \(path): \(message)")
        }
        sqlite3_busy_timeout(handle, 5000)
    }

    deinit { close() }

    /// Closes it; the last connection checkpoints the WAL into the file.
    public func close() {
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    private var lastError: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed" }

    public func execute(_ sql: String) throws(HarnessError) {
        guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else {
            throw HarnessError("\(path): \(sql.prefix(40)): \(lastError)")
        }
    }

    public func integer(_ sql: String) throws(HarnessError) -> Int64 {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { throw HarnessError("\(path): \(sql): \(lastError)") }
        return sqlite3_column_int64(statement, 0)
    }

    /// Runs one statement and returns its rows as text.
    public func rows(_ sql: String) throws(HarnessError) -> [[String]] {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        var rows: [[String]] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return rows }
            guard rc == SQLITE_ROW else { throw HarnessError("\(path): \(sql): \(lastError)") }
            rows.append((0..<sqlite3_column_count(statement)).map { column in
                sqlite3_column_text(statement, column).map { String(cString: $0) } ?? ""
            })
        }
    }

    /// Folds the WAL of the database at `path` into its main file and
    /// truncates the WAL, so that one file is the whole state (nothing else
    /// may have it open).
    public static func checkpoint(_ path: String) throws(HarnessError) {
        let file = try SQLiteFile(path: path)
        defer { file.close() }
        try file.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    public func prepare(_ sql: String) throws(HarnessError) -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw HarnessError("\(path): cannot prepare \(sql.prefix(40)): \(lastError)")
        }
        return statement
    }

    public enum Value: Sendable {
        case integer(Int64)
        case text(String)
        case null
    }

    /// Binds `values` to `statement`, runs it to the end and resets it.
    public func run(_ statement: OpaquePointer, _ values: [Value]) throws(HarnessError) {
        for (index, value) in values.enumerated() {
            let position = Int32(index + 1)
            switch value {
            case .integer(let v): sqlite3_bind_int64(statement, position, v)
            case .text(let v): sqlite3_bind_text(statement, position, v, -1, csqlite_transient())
            case .null: sqlite3_bind_null(statement, position)
            }
        }
        let rc = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard rc == SQLITE_DONE else { throw HarnessError("\(path): \(lastError)") }
    }
}

