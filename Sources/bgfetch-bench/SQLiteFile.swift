import CSQLite
import Foundation
import TestKit

/// One SQLite connection, just enough for seeding state and the raw floor.
final class SQLiteFile {
    private var handle: OpaquePointer?
    let path: String

    init(path: String) throws(HarnessError) {
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
    func close() {
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    private var lastError: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed" }

    func execute(_ sql: String) throws(HarnessError) {
        guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else {
            throw HarnessError("\(path): \(sql.prefix(40)): \(lastError)")
        }
    }

    func integer(_ sql: String) throws(HarnessError) -> Int64 {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { throw HarnessError("\(path): \(sql): \(lastError)") }
        return sqlite3_column_int64(statement, 0)
    }

    func prepare(_ sql: String) throws(HarnessError) -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw HarnessError("\(path): cannot prepare \(sql.prefix(40)): \(lastError)")
        }
        return statement
    }

    enum Value {
        case integer(Int64)
        case text(String)
        case null
    }

    /// Binds `values` to `statement`, runs it to the end and resets it.
    func run(_ statement: OpaquePointer, _ values: [Value]) throws(HarnessError) {
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

/// Raw SQLite: single-row transactions, WAL, `synchronous=FULL`, the
/// daemon's settings, in the same work folder as its state.
struct SQLiteFloor {
    let database: SQLiteFile
    private let insert: OpaquePointer
    private var next: Int64 = 0

    init(directory: String) throws(HarnessError) {
        database = try SQLiteFile(path: directory + "/floor.db")
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute("PRAGMA synchronous=FULL")
        try database.execute("CREATE TABLE IF NOT EXISTS rows (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        insert = try database.prepare("INSERT OR REPLACE INTO rows VALUES (?, ?)")
    }

    /// Commits one row per transaction for `seconds`; commits per second,
    /// and this thread's CPU time per commit in microseconds.
    mutating func commitsPerSecond(for seconds: Double) throws(HarnessError) -> (rate: Double, commits: Int, cpuMicros: Double) {
        let payload = String(repeating: "x", count: 120)
        let cpuStart = Clock.threadCPUNanos()
        let start = Clock.nanos()
        var commits = 0
        while Clock.seconds(since: start) < seconds || commits < 3 {
            try database.execute("BEGIN IMMEDIATE")
            try database.run(insert, [.integer(next % 10_000), .text(payload)])
            try database.execute("COMMIT")
            next += 1
            commits += 1
        }
        let rate = Double(commits) / Clock.seconds(since: start)
        return (rate, commits, Double(Clock.threadCPUNanos() - cpuStart) / 1000 / Double(commits))
    }
}

/// Writes tasks straight into a database in the daemon's schema, as the
/// daemon itself would have stored them.
enum StateSeeder {
    struct Task {
        var appID: String
        var name: String
        var interval: UInt32
        var registeredAt: Int64
        var lastFetch: Int64
        var binding: String?
    }

    /// The schema version this seeder writes for (`PRAGMA user_version`).
    static let schemaVersion: Int64 = 1

    /// Adds `count` tasks made by `make` to the database at `path` (created by
    /// bgfetchd), in one transaction. Every task is `stopOnTerminate` false.
    static func seed(path: String, count: Int, _ make: (Int) -> Task) throws(HarnessError) {
        let database = try SQLiteFile(path: path)
        defer { database.close() }
        let version = try database.integer("PRAGMA user_version")
        guard version == schemaVersion else {
            throw HarnessError("\(path) has schema \(version); the bench writes schema \(schemaVersion): update StateSeeder")
        }
        let uid = Int64(getuid())
        let insert = try database.prepare(
            """
            INSERT INTO tasks (uid, app_id, name, minimum_interval, stop_on_terminate, start_on_boot, registered_at,
                last_fetch, last_result, fetch_count, failure_count, consecutive_failures, dormant, binding,
                request_id, requested_at, deadline, destination)
            VALUES (?, ?, ?, ?, 0, 0, ?, ?, 0, ?, 0, 0, 0, ?, NULL, NULL, NULL, NULL)
            """)
        defer { sqlite3_finalize(insert) }
        try database.execute("BEGIN IMMEDIATE")
        for index in 0..<count {
            let task = make(index)
            try database.run(
                insert,
                [
                    .integer(uid), .text(task.appID), .text(task.name), .integer(Int64(task.interval)),
                    .integer(task.registeredAt), .integer(task.lastFetch), .integer(task.lastFetch > 0 ? 1 : 0),
                    task.binding.map { .text($0) } ?? .null,
                ])
        }
        try database.execute("COMMIT")
    }
}
