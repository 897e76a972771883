import DBus
import Foundation
import Glibc
import TestKit

/// The bench's private world: a work folder, a private bus, the config file
/// with raised limits, and the daemons it starts there.
final class Lab {
    let directory: String
    let bgfetchd: String
    let bus: PrivateBus
    let configFile: String
    private var folders = 0
    /// Apps the bench plays own names under this prefix (the third source of an app id).
    static let appPrefix = "org.bgfetch.Bench"

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
        let configFile = directory + "/bgfetchd.conf"
        self.configFile = configFile
        try HarnessError.wrapping { try Lab.config.write(toFile: configFile, atomically: true, encoding: .utf8) }
        bus = try HarnessError.wrapping { try PrivateBus(config: busConfig, in: directory, executable: dbusDaemon) }
    }

    /// A new, empty folder under the work folder.
    func folder(_ label: String) throws(HarnessError) -> String {
        folders += 1
        let path = "\(directory)/\(folders)-\(label)"
        guard mkdir(path, 0o755) == 0 else { throw HarnessError("cannot create \(path): \(String(cString: strerror(errno)))") }
        return path
    }

    /// A client; with `app`, it first owns that well-known name, which makes
    /// it that app (the bench runs outside any app scope). `onSignal` gets
    /// the service's signals, on the connection's thread.
    func connect(
        app: String? = nil, thread: String, onSignal: (@Sendable (Message) -> Void)? = nil
    ) throws(HarnessError) -> ServiceClient {
        try HarnessError.wrapping("cannot connect to the private bus\(app.map { " as \($0)" } ?? "")") {
            try ServiceClient(address: bus.address, name: app, threadName: thread, onSignal: onSignal)
        }
    }

    /// Starts bgfetchd on the private bus with its state (and its log and
    /// boot id file) in `stateDirectory` and waits until it owns its name;
    /// `newBoot` gives it another boot id. `systemBus`: the bus it takes for
    /// the system bus (NetworkManager and the like); by default none, so the
    /// machine's own stays out of the figures.
    func startDaemon(
        stateDirectory: String, newBoot: Bool = false, timeout: Double = 120, systemBus: String? = nil
    ) throws(HarnessError) -> DaemonUnderTest {
        try HarnessError.wrapping {
            let daemon = try DaemonUnderTest(
                executable: bgfetchd, address: bus.address, directory: stateDirectory, arguments: ["--config", configFile],
                stateDirectory: stateDirectory, bootID: newBoot ? "bench-boot-2" : "bench-boot-1")
            if let systemBus { daemon.environment["DBUS_SYSTEM_BUS_ADDRESS"] = systemBus }
            // A daemon killed on an error path may still hold the name for a moment.
            try pollUntil("the name to be free", timeout: 10) { daemon.nameOwned ? nil : true }
            try daemon.start(timeout: timeout)
            return daemon
        }
    }
}

extension DaemonUnderTest {
    /// The running daemon's pid, for /proc.
    var livePID: pid_t { pid ?? 0 }

    /// SIGTERM; fails unless it exits with 0 and the bus lets go of the name.
    func stopCleanly() throws(HarnessError) {
        let code = stop(signal: SIGTERM, timeout: 30)
        guard code == 0, !nameOwned else {
            throw HarnessError("bgfetchd exited with \(code.map(String.init) ?? "no status") on SIGTERM; see \(logFile)")
        }
    }
}
