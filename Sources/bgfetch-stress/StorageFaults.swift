import DBus
import Foundation
import TestKit
import Glibc

/// Storage faults, run in a mount namespace of its own: the state directory
/// on a tiny tmpfs that is filled up (changes refused with Failed naming the
/// cause, nothing half-written, recovery when space returns), then a
/// truncated database and a deleted WAL at start.
struct StorageFaults {
    let settings: Settings
    let report: PartReport

    func run() throws {
        let root = try PrivateBus.makeTemporaryDirectory("bgfetch-stress-tmpfs")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mountPoint = root + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // Smaller than SQLite's 1000-page auto-checkpoint, so the WAL must grow into the space.
        guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=2m,mode=0755") == 0 else {
            throw HarnessError("cannot mount a tmpfs at \(mountPoint): \(String(cString: strerror(errno)))")
        }
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        report.progress("2 MiB tmpfs at \(mountPoint) (private mount namespace)")

        let bus = try PrivateBus(kind: settings.bus)
        let daemon = try settings.startDaemon(on: bus, stateDirectory: mountPoint + "/state")
        defer { daemon.stop() }
        let client = try ServiceClient(address: bus.address, name: "org.stress.storage", threadName: "storage")
        defer { client.close() }

        try diskFull(daemon, client, mountPoint)
        try truncated(daemon, client)
        try deletedWAL(daemon, client)
    }

    // MARK: Disk full

    private func diskFull(_ daemon: DaemonUnderTest, _ client: ServiceClient, _ mountPoint: String) throws {
        var acked: Set<String> = []
        for i in 0..<5 where (try? client.result("RegisterTask", [.string("keep\(i)"), .vardict(.options(stopOnTerminate: false))]).get()) != nil {
            acked.insert("keep\(i)")
        }
        report.check(acked.count == 5, "tasks register while there is space", "\(acked.count) of 5")

        let filler = mountPoint + "/filler"
        let filled = fill(filler)
        report.progress("filled the tmpfs with \(filled / 1024) KiB; the state directory has no room left")

        // Register until the disk refuses (the WAL may have a little room left).
        var refusal: DBusError?
        var attempts = 0
        while refusal == nil, attempts < 60 {
            let name = "full\(attempts)"
            attempts += 1
            switch client.result("RegisterTask", [.string(name), .vardict(.options(stopOnTerminate: false))]) {
            case .success: acked.insert(name)
            case .failure(let error): refusal = error
            }
        }
        report.progress("first refusal after \(attempts) attempt(s): \(refusal.map { "\($0)" } ?? "none")")
        report.check(refusal?.name == DBusError.Name.failed, "RegisterTask on a full disk is refused with org.freedesktop.DBus.Error.Failed", "\(refusal.map { "\($0)" } ?? "no refusal in \(attempts) attempts")")
        let message = refusal?.message.lowercased() ?? ""
        report.check(message.contains("full") || message.contains("space"), "the refusal names the cause", refusal?.message ?? "")
        report.figure("disk full refusal", refusal.map { "\($0.name): \($0.message)" } ?? "none")

        // Other changes on the full disk: refused or done, never half done.
        switch client.result("UnregisterTask", [.string("keep0")]) {
        case .success: acked.remove("keep0")
        case .failure(let error): report.check(error.name == DBusError.Name.failed, "UnregisterTask on a full disk is refused with Failed", "\(error)")
        }
        _ = client.result("SetMinimumInterval", [.uint32(120)])
        let status = client.result("GetStatus")
        report.check((try? status.get()) != nil, "reads still work on a full disk", "\(status)")
        checkTasks(client, acked, "on the full disk")

        // kill -9 while full: the files hold exactly what was acknowledged.
        daemon.kill9()
        checkSnapshot(daemon, acked, "after kill -9 on the full disk")
        do {
            try daemon.start(timeout: 10)
            report.check(true, "the daemon starts on a full disk")
            checkTasks(client, acked, "after a restart on the full disk")
        } catch {
            report.check(false, "the daemon starts on a full disk", "\(error)")
        }

        // Space returns: changes work again.
        unlink(filler)
        if !daemon.isAlive { try daemon.start() }
        let again = client.result("RegisterTask", [.string("after"), .vardict(.options(stopOnTerminate: false))])
        report.check((try? again.get()) != nil, "RegisterTask works again when space returns", "\(again)")
        if (try? again.get()) != nil { acked.insert("after") }
        checkTasks(client, acked, "after space returned")
        daemon.kill9()
        checkSnapshot(daemon, acked, "after kill -9 with space again")
        try daemon.start()
        checkTasks(client, acked, "after the last restart")
    }

    /// Writes `path` until the file system is full; returns the bytes written.
    private func fill(_ path: String) -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var written = 0
        for size in [65_536, 4_096, 512, 1] {
            let chunk = [UInt8](repeating: 0x55, count: size)
            while true {
                let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
                if n <= 0 { break }
                written += n
            }
        }
        fsync(fd)
        return written
    }

    // MARK: Damaged files at start

    private func truncated(_ daemon: DaemonUnderTest, _ client: ServiceClient) throws {
        let cuts: [(label: String, cut: (Int) -> Int, occupied: Bool)] = [
            ("to half its size", { $0 / 2 }, false),
            ("to its first 100 bytes", { _ in 100 }, false),
            // The name the damaged file would be moved to is taken (a second damage within the same second).
            ("again while its moved-aside name is taken", { $0 / 2 }, true),
        ]
        for (index, variant) in cuts.enumerated() {
            if index > 0 { usleep(1_100_000) }  // a new second: each move gets a name of its own
            if !daemon.isAlive { try daemon.start() }
            _ = client.result("RegisterTask", [.string("before-truncation"), .vardict(.options(stopOnTerminate: false))])
            daemon.stop()
            try SQLiteFile.checkpoint(daemon.databasePath)
            let size = (try? FileManager.default.attributesOfItem(atPath: daemon.databasePath)[.size] as? Int) ?? 0
            let newSize = variant.cut(size)
            truncate(daemon.databasePath, off_t(newSize))
            if variant.occupied {
                let now = Int(Date().timeIntervalSince1970)
                for second in now...(now + 3) {
                    _ = FileManager.default.createFile(atPath: daemon.databasePath + ".corrupt-\(second)", contents: Data("older".utf8))
                }
            }
            let asideBefore = corruptFiles(daemon)
            let logBefore = daemon.log.count
            do {
                try daemon.start()
                report.check(true, "the daemon starts with its database truncated \(variant.label)")
            } catch {
                report.check(false, "the daemon starts with its database truncated \(variant.label)", "\(error)")
                // Clear the way for what follows.
                for suffix in ["", "-wal", "-shm"] { unlink(daemon.databasePath + suffix) }
                continue
            }
            let moved = corruptFiles(daemon).subtracting(asideBefore)
            report.check(!moved.isEmpty, "a database truncated \(variant.label) is moved aside", "files: \(corruptFiles(daemon).sorted())")
            let log = String(daemon.log.dropFirst(logBefore))
            report.check(log.contains("damaged") || log.contains("corrupt"), "the move is logged", String(log.prefix(500)))
            let tasks = Result { () throws(DBusError) in try client.tasks() }
            report.check((try? tasks.get()) != nil, "the daemon serves after the truncation \(variant.label)", "\(tasks)")
            report.figure("truncated \(variant.label)", "\(size) → \(newSize) bytes; moved aside as \(moved.sorted().joined(separator: ", "))")
        }
    }

    private func corruptFiles(_ daemon: DaemonUnderTest) -> Set<String> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: daemon.stateDirectory)) ?? []).filter { $0.contains(".corrupt-") })
    }

    private func deletedWAL(_ daemon: DaemonUnderTest, _ client: ServiceClient) throws {
        if !daemon.isAlive { try daemon.start() }
        for i in 0..<5 { _ = client.result("RegisterTask", [.string("wal\(i)"), .vardict(.options(stopOnTerminate: false))]) }
        daemon.kill9()
        let asideBefore = corruptFiles(daemon)
        let wal = daemon.databasePath + "-wal"
        let walSize = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
        unlink(wal)
        do {
            try daemon.start()
            report.check(true, "the daemon starts after its WAL was deleted")
        } catch {
            report.check(false, "the daemon starts after its WAL was deleted", "\(error)")
            return
        }
        let tasks = Result { () throws(DBusError) in try client.tasks() }
        report.check((try? tasks.get()) != nil, "the daemon serves after its WAL was deleted", "\(tasks)")
        daemon.kill9()
        if let snapshot = try? SQLiteCheck.snapshot(of: daemon.databasePath) {
            report.check(snapshot.integrity == "ok", "PRAGMA integrity_check is ok after the WAL was deleted", snapshot.integrity)
        }
        let kept = (try? tasks.get())?.keys.filter { $0.hasPrefix("wal") }.count ?? 0
        report.figure("deleted WAL", "\(walSize) bytes of WAL deleted; \(kept) of 5 tasks in it survived (the WAL held them); moved aside: \(corruptFiles(daemon).subtracting(asideBefore).sorted().first ?? "nothing")")
        try daemon.start()
    }

    // MARK: Checks

    private func checkTasks(_ client: ServiceClient, _ expected: Set<String>, _ when: String) {
        switch Result(catching: { () throws(DBusError) in try client.tasks() }) {
        case .success(let tasks):
            report.check(Set(tasks.keys) == expected, "the tasks are exactly the acknowledged ones \(when)",
                "missing \(expected.subtracting(tasks.keys).sorted()), extra \(Set(tasks.keys).subtracting(expected).sorted())")
        case .failure(let error):
            report.check(false, "GetRegisteredTasks answers \(when)", "\(error)")
        }
    }

    private func checkSnapshot(_ daemon: DaemonUnderTest, _ expected: Set<String>, _ when: String) {
        do {
            let snapshot = try SQLiteCheck.snapshot(of: daemon.databasePath)
            report.check(snapshot.integrity == "ok", "PRAGMA integrity_check is ok \(when)", snapshot.integrity)
            let stored = snapshot.tasks["org.stress.storage"] ?? []
            report.check(stored == expected, "the database holds exactly the acknowledged tasks \(when)",
                "missing \(expected.subtracting(stored).sorted()), extra \(stored.subtracting(expected).sorted())")
        } catch {
            report.check(false, "the database can be read \(when)", "\(error)")
        }
    }
}
