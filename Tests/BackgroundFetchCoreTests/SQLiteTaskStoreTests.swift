import Foundation
import Testing

@testable import BackgroundFetchCore

@Suite(.timeLimit(.minutes(1)))
struct SQLiteTaskStoreTests {
    func open(_ directory: TemporaryDirectory) throws -> SQLiteTaskStore {
        try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
    }

    /// A record with every field set away from its default.
    static func fullRecord() -> TaskRecord {
        var task = TaskRecord(
            key: TaskKey(app: AppKey(uid: 4_000_000_000, appID: "org.example.Mail"), name: "refresh:inbox"),
            options: TaskOptions(
                minimumInterval: 604_800, stopOnTerminate: false, startOnBoot: true,
                constraints: .init(network: true, unmeteredNetwork: true, externalPower: true, batteryNotLow: true),
                adaptive: false, launch: .never),
            registeredAt: 1_700_000_000_123_456)
        task.lastFetch = 1_700_000_600_654_321
        task.lastResult = .newData
        task.fetchCount = UInt64(Int64.max) + 7
        task.failureCount = 12
        task.consecutiveFailures = 3
        task.consecutiveNoData = 7
        task.dormant = true
        task.binding = ":1.42"
        task.outstanding = TaskRecord.Outstanding(
            requestID: UInt64.max - 1, requestedAt: 1_700_000_700_000_001, deadline: 1_700_000_730_000_001,
            destination: "org.example.Mail")
        return task
    }

    static func plainRecord(_ name: String, app: AppKey = mailApp) -> TaskRecord {
        TaskRecord(key: TaskKey(app: app, name: name), options: TaskOptions(), registeredAt: 1_700_000_000_000_000)
    }

    @Test func aNewDatabaseIsEmpty() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let store = try open(directory)
        let state = try store.load()
        #expect(state.tasks.isEmpty)
        #expect(state.apps.isEmpty)
        #expect(state.bootID == nil)
        #expect(state.nextRequestID == 1)
        #expect(store.path == directory.path + "/bgfetch.db")
        #expect(FileManager.default.fileExists(atPath: store.path))
        #expect(try store.integrityCheck() == "ok")
    }

    @Test func theStateDirectoryIsCreated() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let nested = directory.path + "/a/b/bgfetch"
        let store = try SQLiteTaskStore(directory: nested, logger: quietLogger)
        try store.write({ var b = StoreBatch(); b.bootID = "x"; return b }())
        #expect(FileManager.default.fileExists(atPath: nested + "/bgfetch.db"))
        // Only the owner may look in or read it, on either bus.
        func mode(_ path: String) throws -> Int {
            try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        }
        #expect(try mode(nested) == 0o700)
        #expect(try mode(nested + "/bgfetch.db") == 0o600)
        #expect(try mode(nested + "/bgfetch.db-wal") & 0o077 == 0)
    }

    @Test func everyTaskFieldRoundTrips() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let full = Self.fullRecord()
        var minimal = Self.plainRecord("minimal")
        minimal.lastResult = nil
        var noDataFailed = Self.plainRecord("pending", app: newsApp)
        noDataFailed.lastResult = .failed
        noDataFailed.outstanding = TaskRecord.Outstanding(requestID: 5, requestedAt: 10, deadline: 0, destination: "")
        do {
            let store = try open(directory)
            var batch = StoreBatch()
            batch.save(full)
            batch.save(minimal)
            batch.save(noDataFailed)
            try store.write(batch)
        }
        let loaded = try open(directory).load().tasks
        #expect(loaded.count == 3)
        #expect(loaded.first { $0.key == full.key } == full)
        #expect(loaded.first { $0.key == minimal.key } == minimal)
        let pending = try #require(loaded.first { $0.key == noDataFailed.key })
        #expect(pending == noDataFailed)
        #expect(pending.hasPendingFetch)
        #expect(!pending.hasRunningFetch)
    }

    @Test func savingATaskAgainReplacesIt() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let store = try open(directory)
        var task = Self.fullRecord()
        var batch = StoreBatch()
        batch.save(task)
        try store.write(batch)
        task.outstanding = nil
        task.binding = nil
        task.lastResult = .noData
        task.options = TaskOptions(minimumInterval: 60)
        batch = StoreBatch()
        batch.save(task)
        try store.write(batch)
        #expect(try store.load().tasks == [task])
        #expect(try open(directory).load().tasks == [task])
    }

    @Test func appSettingsRoundTrip() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let disabled = AppSettings(app: mailApp, enabled: false)
        let slow = AppSettings(app: newsApp, enabled: true, minimumInterval: 3600)
        let every = AppSettings(app: AppKey(uid: 0, appID: AppKey.everyApp), enabled: false, minimumInterval: 1)
        do {
            let store = try open(directory)
            var batch = StoreBatch()
            for app in [disabled, slow, every] { batch.savedApps[app.app] = app }
            try store.write(batch)
            // Overwrite one.
            batch = StoreBatch()
            batch.savedApps[newsApp] = AppSettings(app: newsApp, enabled: false, minimumInterval: 604_800)
            try store.write(batch)
        }
        let apps = try open(directory).load().apps
        #expect(apps.count == 3)
        #expect(apps.first { $0.app == mailApp } == disabled)
        #expect(apps.first { $0.app == newsApp } == AppSettings(app: newsApp, enabled: false, minimumInterval: 604_800))
        #expect(apps.first { $0.app == every.app } == every)
    }

    @Test func nextRequestIDAndBootIDRoundTrip() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        do {
            let store = try open(directory)
            var batch = StoreBatch()
            batch.nextRequestID = 42
            batch.bootID = "0f1e2d3c-boot"
            try store.write(batch)
            batch = StoreBatch()
            batch.nextRequestID = UInt64.max
            try store.write(batch)
        }
        let state = try open(directory).load()
        #expect(state.nextRequestID == UInt64.max)
        #expect(state.bootID == "0f1e2d3c-boot")
    }

    @Test func historyKeepsTheLast100FetchesOfEachTaskOldestFirst() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let store = try open(directory)
        let busy = TaskKey(app: mailApp, name: "busy")
        let quiet = TaskKey(app: mailApp, name: "quiet")
        var batch = StoreBatch()
        batch.save(Self.plainRecord("busy"))
        batch.save(Self.plainRecord("quiet"))
        batch.history[1] = HistoryEntry(requestID: 1, task: quiet, requestedAt: 1, finishedAt: 2, result: .noData)
        try store.write(batch)

        // 120 fetches, some in one batch, the rest one by one.
        func entry(_ id: UInt64) -> HistoryEntry {
            HistoryEntry(
                requestID: id, task: busy, requestedAt: Int64(id) * 1000, finishedAt: id % 3 == 0 ? 0 : Int64(id) * 1000 + 5,
                result: FetchResult(rawValue: UInt32(id % 3) + 1))
        }
        batch = StoreBatch()
        for id in UInt64(2)...60 { batch.history[id] = entry(id) }
        try store.write(batch)
        for id in UInt64(61)...121 {
            batch = StoreBatch()
            batch.history[id] = entry(id)
            try store.write(batch)
        }
        let history = try store.history(of: busy)
        #expect(history.count == SQLiteTaskStore.historyPerTask)
        #expect(history.count == 100)
        #expect(history.first?.requestID == 22, "the oldest are dropped")
        #expect(history.last?.requestID == 121)
        #expect(history.map(\.requestID) == Array(22...121))
        #expect(history == (UInt64(22)...121).map(entry))
        #expect(try store.history(of: quiet).map(\.requestID) == [1], "another task's history is its own")

        // Still so after reopening.
        #expect(try open(directory).history(of: busy).count == 100)
    }

    @Test func anOpenFetchInHistoryIsUpdatedInPlace() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let store = try open(directory)
        let key = TaskKey(app: mailApp, name: "t")
        var batch = StoreBatch()
        batch.history[7] = HistoryEntry(requestID: 7, task: key, requestedAt: 100, finishedAt: 0, result: nil)
        try store.write(batch)
        #expect(try store.history(of: key) == [HistoryEntry(requestID: 7, task: key, requestedAt: 100, finishedAt: 0, result: nil)])
        batch = StoreBatch()
        batch.history[7] = HistoryEntry(requestID: 7, task: key, requestedAt: 100, finishedAt: 250, result: .newData)
        try store.write(batch)
        #expect(try store.history(of: key) == [HistoryEntry(requestID: 7, task: key, requestedAt: 100, finishedAt: 250, result: .newData)])
    }

    @Test func historyIsDeletedWithItsTask() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let store = try open(directory)
        let gone = TaskKey(app: mailApp, name: "gone")
        let kept = TaskKey(app: mailApp, name: "kept")
        let sameNameOtherApp = TaskKey(app: newsApp, name: "gone")
        var batch = StoreBatch()
        batch.save(Self.plainRecord("gone"))
        batch.save(Self.plainRecord("kept"))
        batch.save(Self.plainRecord("gone", app: newsApp))
        for (id, key) in [(UInt64(1), gone), (2, kept), (3, gone), (4, sameNameOtherApp)] {
            batch.history[id] = HistoryEntry(requestID: id, task: key, requestedAt: 1, finishedAt: 2, result: .newData)
        }
        try store.write(batch)
        #expect(try store.history(of: gone).count == 2)

        batch = StoreBatch()
        batch.delete(gone)
        try store.write(batch)
        #expect(try store.history(of: gone).isEmpty)
        #expect(try store.history(of: kept).map(\.requestID) == [2])
        #expect(try store.history(of: sameNameOtherApp).map(\.requestID) == [4])
        #expect(try store.load().tasks.map(\.key).sorted() == [kept, sameNameOtherApp].sorted())
    }

    @Test func anEmptyBatchChangesNothing() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let store = try open(directory)
        var batch = StoreBatch()
        batch.save(Self.plainRecord("t"))
        try store.write(batch)
        #expect(StoreBatch().isEmpty)
        try store.write(StoreBatch())
        #expect(try store.load().tasks.count == 1)
    }

    @Test func saveAfterDeleteInOneBatchKeepsTheTask() throws {
        var batch = StoreBatch()
        let task = Self.plainRecord("t")
        batch.delete(task.key)
        batch.save(task)
        #expect(batch.deletedTasks.isEmpty)
        batch.delete(task.key)
        #expect(batch.savedTasks.isEmpty)
        batch.save(task)

        let directory = try TemporaryDirectory()

        defer { withExtendedLifetime(directory) {} }
        let store = try open(directory)
        try store.write(batch)
        #expect(try store.load().tasks == [task])
    }

    @Test func aGarbageFileIsMovedAsideAndAFreshDatabaseWorks() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let dbPath = directory.path + "/" + SQLiteTaskStore.fileName
        try garbage.write(to: URL(fileURLWithPath: dbPath))

        let store = try open(directory)
        let contents = try directory.contents()
        let aside = contents.filter { $0.hasPrefix("bgfetch.db.corrupt-") }
        #expect(aside.count == 1, "contents: \(contents)")
        let moved = try #require(aside.first)
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + moved)) == garbage, "kept, not overwritten")

        #expect(try store.integrityCheck() == "ok")
        #expect(try store.load().tasks.isEmpty)
        var batch = StoreBatch()
        batch.save(Self.fullRecord())
        batch.bootID = "b"
        try store.write(batch)
        #expect(try store.load().tasks == [Self.fullRecord()])
        #expect(try open(directory).load().bootID == "b")
    }

    @Test func aTruncatedDatabaseIsMovedAside() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        do {
            let store = try open(directory)
            var batch = StoreBatch()
            for i in 0..<200 { batch.save(Self.plainRecord("task\(i)")) }
            try store.write(batch)
        }
        // Keep the header page, wreck the rest.
        let dbPath = directory.path + "/" + SQLiteTaskStore.fileName
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dbPath + suffix) }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dbPath))
        #expect(bytes.count > 4096)
        let wreck = Data(repeating: 0xA5, count: bytes.count - 100)
        bytes.replaceSubrange(100..<bytes.count, with: wreck)
        try bytes.write(to: URL(fileURLWithPath: dbPath))

        let store = try open(directory)
        #expect(try directory.contents().contains { $0.hasPrefix("bgfetch.db.corrupt-") })
        #expect(try store.integrityCheck() == "ok")
        #expect(try store.load().tasks.isEmpty)
    }

    /// A database of the first release (schema 1, before constraints) opens,
    /// and its tasks keep the defaults of the options added since.
    @Test func aSchema1DatabaseIsMigratedWithTheNewOptionsAtTheirDefaults() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        do {
            let database = try SQLiteDatabase(path: directory.path + "/" + SQLiteTaskStore.fileName)
            try database.execute(SQLiteTaskStore.migrations[0])
            try database.execute(
                """
                INSERT INTO tasks VALUES (1000, 'org.example.Mail', 'old', 900, 0, 1, 5, 0, 0, 0, 0, 0, 0, NULL,
                    NULL, NULL, NULL, NULL);
                PRAGMA user_version = 1;
                """)
        }
        let store = try open(directory)
        let old = try #require(try store.load().tasks.first)
        #expect(old.key.name == "old" && old.options.minimumInterval == 900 && old.options.startOnBoot)
        #expect(old.options.constraints == .none && old.options.adaptive && old.options.launch == .activate)
        var batch = StoreBatch()
        batch.save(Self.fullRecord())
        try store.write(batch)
        #expect(try store.load().tasks.contains(Self.fullRecord()))
    }

    @Test func aNewerSchemaIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        do { _ = try open(directory) }
        // Mark the database as written by a future version, through a second store's connection.
        do {
            let database = try SQLiteDatabase(path: directory.path + "/" + SQLiteTaskStore.fileName)
            try database.execute("PRAGMA user_version = 99")
        }
        let error = expectFetchError(.failed) { () throws(FetchError) in
            try SQLiteTaskStore(directory: directory.path, logger: quietLogger)
        }
        #expect(error?.message.contains("newer") == true)
        #expect(try !directory.contents().contains { $0.contains("corrupt") }, "a newer database is not moved aside")
    }

    @Test func anEngineOnSQLiteStoresEveryCallsChange() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let store = try open(directory)
        let h = try EngineHarness(store: store, bootID: "boot-Z")
        try h.engine.register(mail, name: "t", options: TaskOptions(minimumInterval: 600))
        let request = try singleRequest(try h.runTimer())
        try h.engine.finish(mail, requestID: request.requestID, result: .newData)

        let reopened = try open(directory)
        let state = try reopened.load()
        #expect(state.bootID == "boot-Z")
        #expect(state.nextRequestID == request.requestID + 1)
        let task = try #require(state.tasks.first)
        #expect(task.lastResult == .newData)
        #expect(task.fetchCount == 1)
        #expect(task.binding == mail.connection)
        #expect(task.outstanding == nil)
        #expect(try reopened.history(of: key(mail, "t")).map(\.result) == [.newData])
        #expect(try reopened.integrityCheck() == "ok")
    }

    @Test func aSecondDamagedDatabaseInTheSameSecondGetsItsOwnName() throws {
        let directory = try TemporaryDirectory()
        let db = (directory.path as NSString).appendingPathComponent(SQLiteTaskStore.fileName)
        for round in 1...2 {
            try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: db))
            let store = try open(directory)
            #expect(try store.load().tasks.isEmpty, "round \(round)")
        }
        let aside = try directory.contents().filter { $0.hasPrefix("bgfetch.db.corrupt-") }
        #expect(aside.count == 2)
    }

    @Test func aNewBootIsAppliedSetBasedAsTheEngineAppliesItInMemory() throws {
        let directory = try TemporaryDirectory()
        let store = try open(directory)
        func task(_ name: String, stop: Bool, boot: Bool, deadline: Int64?) -> TaskRecord {
            var t = TaskRecord(
                key: TaskKey(app: mailApp, name: name), options: TaskOptions(stopOnTerminate: stop, startOnBoot: boot),
                registeredAt: 1_700_000_000_000_000)
            t.binding = ":1.7"
            if let deadline {
                t.outstanding = .init(requestID: UInt64(name.count * 10), requestedAt: 5, deadline: deadline, destination: ":1.7")
            }
            return t
        }
        let records = [
            task("gone", stop: true, boot: false, deadline: nil),
            task("boots", stop: false, boot: true, deadline: 99),
            task("sleeps", stop: false, boot: false, deadline: nil),
            task("waiting", stop: false, boot: false, deadline: 0),
        ]
        var batch = StoreBatch()
        for record in records {
            batch.save(record)
            if let o = record.outstanding {
                batch.history[o.requestID] = HistoryEntry(requestID: o.requestID, task: record.key, requestedAt: 5, finishedAt: 0, result: nil)
            }
        }
        try store.write(batch)
        var boot = StoreBatch()
        boot.newBoot = true
        try store.write(boot)
        let loaded = Dictionary(uniqueKeysWithValues: try store.load().tasks.map { ($0.key.name, $0) })
        #expect(loaded["gone"] == nil)
        for record in records.dropFirst() {
            #expect(loaded[record.key.name] == NewBoot.apply(to: record), "\(record.key.name)")
        }
        let inFlight = try store.history(of: TaskKey(app: mailApp, name: "boots"))
        #expect(inFlight.map(\.result) == [.failed])
        #expect(try store.history(of: TaskKey(app: mailApp, name: "waiting")).map(\.result) == [nil])
    }

    @Test func departedConnectionsAreAppliedSetBased() throws {
        let directory = try TemporaryDirectory()
        let store = try open(directory)
        var batch = StoreBatch()
        for (name, binding, stop) in [("a", ":1.1", true), ("b", ":1.1", false), ("c", ":1.2", true)] {
            var t = TaskRecord(key: TaskKey(app: mailApp, name: name), options: TaskOptions(stopOnTerminate: stop), registeredAt: 1)
            t.binding = binding
            batch.save(t)
        }
        try store.write(batch)
        var departed = StoreBatch()
        departed.departedConnections = [":1.1"]
        try store.write(departed)
        let loaded = Dictionary(uniqueKeysWithValues: try store.load().tasks.map { ($0.key.name, $0) })
        #expect(loaded.keys.sorted() == ["b", "c"])
        #expect(loaded["b"]?.binding == nil)
        #expect(loaded["c"]?.binding == ":1.2")
    }
}
