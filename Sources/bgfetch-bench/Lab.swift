import Foundation
import Glibc
import TestKit

/// The bench's private world: a work folder, a private bus, the config file
/// with raised limits, boot id files, and the daemons it starts there.
final class Lab {
    let directory: String
    let bgfetchd: String
    let bus: PrivateBus
    let watcher: NameWatcher
    let configFile: String
    /// The boot id every start sees, unless a stage asks for a new boot.
    let bootIDFile: String
    let nextBootIDFile: String
    private var folders = 0

    static let config = """
        # bgfetch-bench: limits raised so the bench's apps may hold every task it makes
        [Scheduling]
        MinimumIntervalFloor=1
        FetchTimeout=30

        [Limits]
        TasksPerApp=10000000
        TasksPerUser=10000000

        """

    init(directory: String, bgfetchd: String, dbusDaemon: String, busConfig: PrivateBus.Config) throws(HarnessError) {
        self.directory = directory
        self.bgfetchd = bgfetchd
        configFile = directory + "/bgfetchd.conf"
        bootIDFile = directory + "/boot_id"
        nextBootIDFile = directory + "/boot_id.next"
        do {
            try Self.config.write(toFile: configFile, atomically: true, encoding: .utf8)
            try "bench-boot-1\n".write(toFile: bootIDFile, atomically: true, encoding: .utf8)
            try "bench-boot-2\n".write(toFile: nextBootIDFile, atomically: true, encoding: .utf8)
        } catch {
            throw HarnessError("cannot write to \(directory): \(error.localizedDescription)")
        }
        do {
            bus = try PrivateBus(config: busConfig, in: directory, executable: dbusDaemon)
        } catch {
            throw HarnessError("\(error)")
        }
        watcher = try NameWatcher(bus: bus)
    }

    /// A new, empty folder under the work folder.
    func folder(_ label: String) throws(HarnessError) -> String {
        folders += 1
        let path = "\(directory)/\(folders)-\(label)"
        guard mkdir(path, 0o755) == 0 else { throw HarnessError("cannot create \(path): \(String(cString: strerror(errno)))") }
        return path
    }

    /// Starts bgfetchd on the private bus with its state in `stateDirectory`
    /// and waits until it owns its name.
    /// `systemBus`: the bus it takes for the system bus (NetworkManager and
    /// the like); by default none, so the machine's own stays out of the figures.
    func startDaemon(
        stateDirectory: String, newBoot: Bool = false, timeout: Double = 120,
        systemBus: String = "unix:path=/nonexistent/bgfetch-bench-has-no-system-bus"
    ) throws(HarnessError) -> DaemonRun {
        let log = stateDirectory + "/bgfetchd.log"
        let arguments = [
            "--address", bus.address, "--state-dir", stateDirectory, "--config", configFile,
            "--boot-id-file", newBoot ? nextBootIDFile : bootIDFile, "--log-level", "info",
        ]
        // A daemon killed on an error path may still hold the name for a moment.
        try watcher.wait(owned: false, child: nil, timeout: 10)
        let started = Clock.nanos()
        let child = try Child(bgfetchd, arguments, output: log, environment: ["DBUS_SYSTEM_BUS_ADDRESS": systemBus])
        let owned: UInt64
        do {
            owned = try watcher.wait(owned: true, since: started, child: child, timeout: timeout)
        } catch {
            child.stop(SIGKILL)
            let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(3)
            throw HarnessError("\(error.description)\n\(tail?.joined(separator: "\n") ?? "")")
        }
        return DaemonRun(lab: self, child: child, startSeconds: Double(owned &- started) / 1e9, log: log)
    }

    func shutdown() {
        watcher.connection.close()
        bus.stop()
    }
}

/// One bgfetchd the bench started.
final class DaemonRun {
    let child: Child
    /// From posix_spawn until the bus said the name is owned.
    let startSeconds: Double
    let log: String
    private let lab: Lab

    init(lab: Lab, child: Child, startSeconds: Double, log: String) {
        self.lab = lab
        self.child = child
        self.startSeconds = startSeconds
        self.log = log
    }

    var pid: Int32 { child.pid }

    /// SIGTERM, then waits until it exited and the bus has let go of the name.
    func stop() throws(HarnessError) {
        let code = child.stop(SIGTERM, timeout: 30)
        try lab.watcher.wait(owned: false, child: child, timeout: 10)
        guard code == 0 else { throw HarnessError("bgfetchd exited with \(code.map(String.init) ?? "no status") on SIGTERM; see \(log)") }
    }

    deinit { child.stop(SIGKILL) }
}
