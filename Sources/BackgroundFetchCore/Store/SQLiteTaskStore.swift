import CSQLite
import Foundation
import Logging

/// The durable store: one SQLite database in the state directory.
///
/// WAL journal with `synchronous=FULL`: a commit returns only after the log
/// is on disk, so an acknowledged change survives `kill -9` and power loss.
public final class SQLiteTaskStore: TaskStore {
    public static let fileName = "bgfetch.db"
    static var schemaVersion: Int64 { Int64(migrations.count) }
    /// Rows of history kept for each task.
    public static let historyPerTask = 100

    private let database: SQLiteDatabase
    public let path: String

    /// Opens (creating or migrating) the database in `directory`.
    ///
    /// A damaged database is moved aside as `bgfetch.db.corrupt-<time>` with
    /// an error in the log, and a new one is started: never silently replaced.
    public init(directory: String, logger: Logger) throws(FetchError) {
        do {
            // Only its owner may look in (as StateDirectoryMode=0700 does on the system bus).
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .failed("cannot create the state directory \(directory): \(error.localizedDescription)")
        }
        path = (directory as NSString).appendingPathComponent(Self.fileName)
        do {
            database = try Self.openChecked(path: path)
        } catch let error where error.isCorruption {
            let aside = Self.unusedName(path + ".corrupt-\(Int(Date().timeIntervalSince1970))")
            logger.error("the database is damaged; moving it aside", metadata: ["path": "\(path)", "to": "\(aside)", "error": "\(error)"])
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                do {
                    try FileManager.default.moveItem(atPath: path + suffix, toPath: aside + suffix)
                } catch {
                    throw .failed("cannot move the damaged database \(path + suffix) aside: \(error.localizedDescription)")
                }
            }
            do {
                database = try Self.openChecked(path: path)
            } catch {
                throw .failed("cannot open a new database at \(path): \(error)")
            }
        } catch {
            throw .failed("cannot open the database \(path): \(error)")
        }
        // Readable by its owner alone (SQLite gives files it makes later the
        // database's mode; the WAL and its index exist already).
        for suffix in ["", "-wal", "-shm"] { chmod(path + suffix, 0o600) }
    }

    /// `base`, or `base.2`, `base.3`, … : the first name no file has.
    private static func unusedName(_ base: String) -> String {
        var candidate = base
        var n = 1
        while ["", "-wal", "-shm"].contains(where: { FileManager.default.fileExists(atPath: candidate + $0) }) {
            n += 1
            candidate = "\(base).\(n)"
        }
        return candidate
    }

    private static func openChecked(path: String) throws(SQLiteError) -> SQLiteDatabase {
        let database = try SQLiteDatabase(path: path)
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute("PRAGMA synchronous=FULL")
        // Savepoints journal each statement; keep that journal in memory, not in a temp file.
        try database.execute("PRAGMA temp_store=MEMORY")
        try database.execute("PRAGMA foreign_keys=ON")
        let check = try database.scalarText("PRAGMA quick_check")
        guard check == "ok" else {
            throw SQLiteError(code: SQLITE_CORRUPT, message: "quick_check: \(check ?? "no answer")")
        }
        try migrate(database)
        return database
    }

    /// The schema's steps: `migrations[n]` takes a database from version n
    /// to n + 1 (0: empty).
    static let migrations = [
        """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE tasks (
                uid INTEGER NOT NULL, app_id TEXT NOT NULL, name TEXT NOT NULL,
                minimum_interval INTEGER NOT NULL, stop_on_terminate INTEGER NOT NULL,
                start_on_boot INTEGER NOT NULL, registered_at INTEGER NOT NULL,
                last_fetch INTEGER NOT NULL, last_result INTEGER NOT NULL,
                fetch_count INTEGER NOT NULL, failure_count INTEGER NOT NULL,
                consecutive_failures INTEGER NOT NULL, dormant INTEGER NOT NULL, binding TEXT,
                request_id INTEGER, requested_at INTEGER, deadline INTEGER, destination TEXT,
                PRIMARY KEY (uid, app_id, name)) WITHOUT ROWID;
            CREATE TABLE apps (
                uid INTEGER NOT NULL, app_id TEXT NOT NULL, enabled INTEGER NOT NULL,
                minimum_interval INTEGER, PRIMARY KEY (uid, app_id)) WITHOUT ROWID;
            CREATE TABLE history (
                request_id INTEGER PRIMARY KEY, uid INTEGER NOT NULL, app_id TEXT NOT NULL,
                name TEXT NOT NULL, requested_at INTEGER NOT NULL, finished_at INTEGER NOT NULL,
                result INTEGER NOT NULL);
            CREATE INDEX history_by_task ON history (uid, app_id, name, request_id);
        """,
        // The constraints, the adaptive policy and launch (0.2): tasks
        // stored before keep the defaults.
        """
            ALTER TABLE tasks ADD COLUMN requires_network INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE tasks ADD COLUMN requires_unmetered_network INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE tasks ADD COLUMN requires_external_power INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE tasks ADD COLUMN requires_battery_not_low INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE tasks ADD COLUMN adaptive INTEGER NOT NULL DEFAULT 1;
            ALTER TABLE tasks ADD COLUMN launch TEXT NOT NULL DEFAULT 'activate';
            ALTER TABLE tasks ADD COLUMN consecutive_no_data INTEGER NOT NULL DEFAULT 0;
        """,
    ]

    private static func migrate(_ database: SQLiteDatabase) throws(SQLiteError) {
        var version: Int64 = 0
        try database.run("PRAGMA user_version") { version = $0.int(0) }
        guard version < schemaVersion else {
            if version > schemaVersion {
                throw SQLiteError(code: SQLITE_ERROR, message: "the database has schema \(version), newer than this bgfetchd (\(schemaVersion))")
            }
            return
        }
        try database.transaction { () throws(SQLiteError) in
            for step in Int(version)..<Int(schemaVersion) { try database.execute(migrations[step]) }
            try database.execute("PRAGMA user_version = \(schemaVersion)")
        }
    }

    // MARK: TaskStore

    public func load(eachTask: (TaskRecord) -> Void) throws(FetchError) -> StoredState {
        var state = StoredState()
        // One copy of each app id, however many tasks the app has.
        var appIDs: [String: String] = [:]
        do {
            try database.run(
                """
                SELECT uid, app_id, name, minimum_interval, stop_on_terminate, start_on_boot, registered_at,
                       last_fetch, last_result, fetch_count, failure_count, consecutive_failures,
                       dormant, binding, request_id, requested_at, deadline, destination,
                       requires_network, requires_unmetered_network, requires_external_power,
                       requires_battery_not_low, adaptive, launch, consecutive_no_data
                FROM tasks
                """
            ) { row in
                var task = Self.task(from: row)
                let appID = task.key.app.appID
                if let shared = appIDs[appID] { task.key.app.appID = shared } else { appIDs[appID] = appID }
                eachTask(task)
            }
            try database.run("SELECT uid, app_id, enabled, minimum_interval FROM apps") { row in
                let app = AppKey(uid: UInt32(truncatingIfNeeded: row.int(0)), appID: row.text(1) ?? "")
                let interval = row.isNull(3) ? nil : UInt32(truncatingIfNeeded: row.int(3))
                state.apps.append(AppSettings(app: app, enabled: row.bool(2), minimumInterval: interval))
            }
            try database.run("SELECT key, value FROM meta") { row in
                switch row.text(0) {
                case "boot_id": state.bootID = row.text(1)
                case "next_request_id": state.nextRequestID = UInt64(row.text(1) ?? "") ?? 1
                default: break
                }
            }
        } catch {
            throw .failed("cannot read the database \(path): \(error)")
        }
        return state
    }

    private static func task(from row: SQLiteRow) -> TaskRecord {
        let app = AppKey(uid: UInt32(truncatingIfNeeded: row.int(0)), appID: row.text(1) ?? "")
        let options = TaskOptions(
            minimumInterval: UInt32(truncatingIfNeeded: row.int(3)), stopOnTerminate: row.bool(4),
            startOnBoot: row.bool(5),
            constraints: .init(network: row.bool(18), unmeteredNetwork: row.bool(19), externalPower: row.bool(20), batteryNotLow: row.bool(21)),
            adaptive: row.bool(22), launch: LaunchPolicy(rawValue: row.text(23) ?? "") ?? .activate)
        var task = TaskRecord(
            key: TaskKey(app: app, name: row.text(2) ?? ""), options: options, registeredAt: row.int(6))
        task.lastFetch = row.int(7)
        task.lastResult = FetchResult(rawValue: UInt32(truncatingIfNeeded: row.int(8)))
        task.fetchCount = UInt64(bitPattern: row.int(9))
        task.failureCount = UInt64(bitPattern: row.int(10))
        task.consecutiveFailures = UInt32(truncatingIfNeeded: row.int(11))
        task.dormant = row.bool(12)
        task.consecutiveNoData = UInt32(truncatingIfNeeded: row.int(24))
        task.binding = row.text(13)
        if !row.isNull(14) {
            task.outstanding = TaskRecord.Outstanding(
                requestID: UInt64(bitPattern: row.int(14)), requestedAt: row.int(15), deadline: row.int(16),
                destination: row.text(17) ?? "")
        }
        return task
    }

    public func write(_ batch: StoreBatch) throws(FetchError) {
        guard !batch.isEmpty else { return }
        do {
            if inRound {
                if !transactionOpen {
                    try database.run("BEGIN IMMEDIATE")
                    transactionOpen = true
                }
                try database.savepoint { () throws(SQLiteError) in try apply(batch) }
            } else {
                try database.transaction { () throws(SQLiteError) in try apply(batch) }
            }
        } catch {
            throw .failed("the change could not be stored: \(error)")
        }
    }

    // MARK: Rounds

    private var inRound = false
    /// A round's transaction starts with its first batch.
    private var transactionOpen = false

    /// From now until ``commitRound()``, batches join one transaction, each
    /// as a savepoint (a failing batch undoes only itself).
    public func beginRound() {
        inRound = true
    }

    /// Commits the round with one sync to disk. If that fails, everything
    /// since ``beginRound()`` is rolled back and the error says why.
    public func commitRound() throws(FetchError) {
        inRound = false
        guard transactionOpen else { return }
        transactionOpen = false
        do {
            try database.run("COMMIT")
        } catch {
            try? database.run("ROLLBACK")
            throw .failed("the change could not be stored: \(error)")
        }
    }

    private func apply(_ batch: StoreBatch) throws(SQLiteError) {
        if batch.newBoot {
            // NewBoot.apply, for every row at once.
            try database.execute(
                """
                DELETE FROM history WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.stop_on_terminate = 1
                    AND t.uid = history.uid AND t.app_id = history.app_id AND t.name = history.name);
                DELETE FROM tasks WHERE stop_on_terminate = 1;
                UPDATE history SET finished_at = 0, result = 3
                    WHERE request_id IN (SELECT request_id FROM tasks WHERE deadline > 0);
                UPDATE tasks SET last_result = 3, failure_count = failure_count + 1,
                    consecutive_failures = consecutive_failures + 1,
                    request_id = NULL, requested_at = NULL, deadline = NULL, destination = NULL
                    WHERE deadline > 0;
                UPDATE tasks SET binding = NULL, dormant = CASE WHEN start_on_boot = 0 THEN 1 ELSE dormant END;
                """)
        }
        if !batch.departedConnections.isEmpty {
            try database.execute("CREATE TEMP TABLE IF NOT EXISTS departed (name TEXT PRIMARY KEY)")
            try database.execute("DELETE FROM departed")
            for name in batch.departedConnections {
                try database.run("INSERT OR IGNORE INTO departed VALUES (?)", [.text(name)])
            }
            try database.execute(
                """
                DELETE FROM history WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.stop_on_terminate = 1
                    AND t.binding IN (SELECT name FROM departed)
                    AND t.uid = history.uid AND t.app_id = history.app_id AND t.name = history.name);
                DELETE FROM tasks WHERE stop_on_terminate = 1 AND binding IN (SELECT name FROM departed);
                UPDATE tasks SET binding = NULL WHERE binding IN (SELECT name FROM departed);
                DELETE FROM departed;
                """)
        }
        for key in batch.deletedTasks {
            let id: [SQLiteValue] = [.int(key.app.uid), .text(key.app.appID), .text(key.name)]
            try database.run("DELETE FROM tasks WHERE uid = ? AND app_id = ? AND name = ?", id)
            try database.run("DELETE FROM history WHERE uid = ? AND app_id = ? AND name = ?", id)
        }
        for task in batch.savedTasks.values {
            let outstanding = task.outstanding
            try database.run(
                """
                INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .int(task.key.app.uid), .text(task.key.app.appID), .text(task.key.name),
                    .int(task.options.minimumInterval), .bool(task.options.stopOnTerminate),
                    .bool(task.options.startOnBoot), .integer(task.registeredAt), .integer(task.lastFetch),
                    .int(task.lastResult?.rawValue ?? 0), .integer(Int64(bitPattern: task.fetchCount)),
                    .integer(Int64(bitPattern: task.failureCount)), .int(task.consecutiveFailures),
                    .bool(task.dormant),
                    task.binding.map { .text($0) } ?? .null,
                    outstanding.map { .integer(Int64(bitPattern: $0.requestID)) } ?? .null,
                    outstanding.map { .integer($0.requestedAt) } ?? .null,
                    outstanding.map { .integer($0.deadline) } ?? .null,
                    outstanding.map { .text($0.destination) } ?? .null,
                    .bool(task.options.constraints.network), .bool(task.options.constraints.unmeteredNetwork),
                    .bool(task.options.constraints.externalPower), .bool(task.options.constraints.batteryNotLow),
                    .bool(task.options.adaptive), .text(task.options.launch.rawValue), .int(task.consecutiveNoData),
                ])
        }
        for app in batch.savedApps.values {
            try database.run(
                "INSERT OR REPLACE INTO apps VALUES (?, ?, ?, ?)",
                [.int(app.app.uid), .text(app.app.appID), .bool(app.enabled), app.minimumInterval.map { .int($0) } ?? .null])
        }
        var touched: Set<TaskKey> = []
        for entry in batch.history.values.sorted(by: { $0.requestID < $1.requestID }) {
            try database.run(
                "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    .integer(Int64(bitPattern: entry.requestID)), .int(entry.task.app.uid), .text(entry.task.app.appID),
                    .text(entry.task.name), .integer(entry.requestedAt), .integer(entry.finishedAt),
                    .int(entry.result?.rawValue ?? 0),
                ])
            touched.insert(entry.task)
        }
        for key in touched {
            try database.run(
                """
                DELETE FROM history WHERE request_id IN (
                    SELECT request_id FROM history WHERE uid = ? AND app_id = ? AND name = ?
                    ORDER BY request_id DESC LIMIT -1 OFFSET \(Self.historyPerTask))
                """,
                [.int(key.app.uid), .text(key.app.appID), .text(key.name)])
        }
        if let next = batch.nextRequestID {
            try database.run("INSERT OR REPLACE INTO meta VALUES ('next_request_id', ?)", [.text(String(next))])
        }
        if let boot = batch.bootID {
            try database.run("INSERT OR REPLACE INTO meta VALUES ('boot_id', ?)", [.text(boot)])
        }
    }

    public func history(of task: TaskKey) throws(FetchError) -> [HistoryEntry] {
        var entries: [HistoryEntry] = []
        do {
            try database.run(
                """
                SELECT request_id, requested_at, finished_at, result FROM history
                WHERE uid = ? AND app_id = ? AND name = ? ORDER BY request_id
                """,
                [.int(task.app.uid), .text(task.app.appID), .text(task.name)]
            ) { row in
                entries.append(
                    HistoryEntry(
                        requestID: UInt64(bitPattern: row.int(0)), task: task, requestedAt: row.int(1),
                        finishedAt: row.int(2), result: FetchResult(rawValue: UInt32(truncatingIfNeeded: row.int(3)))))
            }
        } catch {
            throw .failed("cannot read the history: \(error)")
        }
        return entries
    }

    /// `PRAGMA integrity_check`, for tests and tools.
    public func integrityCheck() throws(FetchError) -> String {
        do { return try database.scalarText("PRAGMA integrity_check") ?? "" } catch { throw .failed("\(error)") }
    }
}
