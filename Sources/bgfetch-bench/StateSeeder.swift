import BackgroundFetchCore
import Foundation
import Logging
import TestKit

/// Writes tasks into a state folder through the daemon's own store
/// (`SQLiteTaskStore`), so the bench never restates the schema.
enum StateSeeder {
    struct Task {
        var appID: String
        var name: String
        var interval: UInt32
        var registeredAt: Int64
        var lastFetch: Int64
        var binding: String?
    }

    /// Adds `count` tasks made by `make` to the database at `path`, in one
    /// transaction. Every task is `stopOnTerminate` false.
    static func seed(path: String, count: Int, _ make: (Int) -> Task) throws(HarnessError) {
        let directory = (path as NSString).deletingLastPathComponent
        var batch = StoreBatch()
        let uid = UInt32(getuid())
        for index in 0..<count {
            let task = make(index)
            var record = TaskRecord(
                key: TaskKey(app: AppKey(uid: uid, appID: task.appID), name: task.name),
                options: TaskOptions(minimumInterval: task.interval, stopOnTerminate: false), registeredAt: task.registeredAt)
            record.lastFetch = task.lastFetch
            record.fetchCount = task.lastFetch > 0 ? 1 : 0
            record.binding = task.binding
            batch.save(record)
        }
        try HarnessError.wrapping("cannot seed \(path)") {
            var quiet = Logger(label: "bench-seed")
            quiet.logLevel = .critical
            let store = try SQLiteTaskStore(directory: directory, logger: quiet)
            try store.write(batch)
        }
    }
}
