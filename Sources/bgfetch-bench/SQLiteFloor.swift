import CSQLite
import TestKit

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
        let cpuStart = Clocks.threadCPUNanos
        let start = Clocks.nanos
        var commits = 0
        while Clocks.seconds(since: start) < seconds || commits < 3 {
            try database.execute("BEGIN IMMEDIATE")
            try database.run(insert, [.integer(next % 10_000), .text(payload)])
            try database.execute("COMMIT")
            next += 1
            commits += 1
        }
        let rate = Double(commits) / Clocks.seconds(since: start)
        return (rate, commits, Double(Clocks.threadCPUNanos - cpuStart) / 1000 / Double(commits))
    }
}
