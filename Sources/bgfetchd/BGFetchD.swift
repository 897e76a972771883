import ArgumentParser
import BackgroundFetchCore
import DBus
import Foundation
import Glibc
import Logging

@main
struct BGFetchD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bgfetchd",
        abstract: "The bgfetch background-fetch service (org.bgfetch.BackgroundFetch1).",
        discussion: """
            bgfetchd lets desktop apps register named background tasks and wakes each about every \
            minimum interval with a FetchRequested signal; the app refreshes its data and answers \
            NoData, NewData or Failed with FinishFetch. It serves the session bus (one daemon per \
            user) or the system bus (one for every user), started by D-Bus activation or systemd, \
            and keeps its registrations across restarts and boots in SQLite under its state \
            directory ($XDG_STATE_HOME/bgfetch, /var/lib/bgfetch on the system bus, or --state-dir). \
            Whichever bus it serves, it follows NetworkManager, UPower, power-profiles-daemon and \
            logind on the system bus (DBUS_SYSTEM_BUS_ADDRESS) by their signals: a due task waits \
            for the network or power it requires, for power-saver mode to end and for the machine to \
            wake, and an outstanding fetch delays sleep through a logind inhibitor. Its D-Bus API is \
            org.bgfetch.BackgroundFetch1(5); its settings file is bgfetchd.conf(5); bgfetchctl(1) \
            inspects and controls it. SIGTERM or SIGINT stops it: \
            the calls already queued are served and stored first. It exits 1 with a one-line reason \
            when it cannot start.
            """,
        version: Wire.version)

    @Flag(help: "Serve the session bus (the default).") var session = false
    @Flag(help: "Serve the system bus, for every user.") var system = false
    @Option(help: ArgumentHelp("Serve the bus at this address.", valueName: "ADDRESS")) var address: String?
    @Option(help: ArgumentHelp("Where the database lives.", valueName: "DIR")) var stateDir: String?
    @Option(help: ArgumentHelp("The administrator's key file (default /etc/bgfetch/bgfetchd.conf if it exists).", valueName: "FILE"))
    var config: String?
    @Option(help: ArgumentHelp("The floor on every task's interval.", valueName: "SECONDS")) var minimumIntervalFloor: UInt32?
    @Option(help: ArgumentHelp("Seconds an app has to answer a fetch.", valueName: "SECONDS")) var fetchTimeout: UInt32?
    @Option(help: ArgumentHelp("Read the boot id from this file.", valueName: "FILE"))
    var bootIdFile = "/proc/sys/kernel/random/boot_id"
    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "LEVEL"))
    var logLevel = "info"
    @Flag(help: "Print the service's introspection XML and exit.") var printIntrospection = false

    func validate() throws {
        if [session, system, address != nil].filter({ $0 }).count > 1 {
            throw ValidationError("choose one of --session, --system and --address")
        }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        if let floor = minimumIntervalFloor, !TaskOptions.intervalRange.contains(floor) {
            throw ValidationError("--minimum-interval-floor must be 1–604800")
        }
        if let timeout = fetchTimeout, !(1...3600).contains(timeout) {
            throw ValidationError("--fetch-timeout must be 1–3600")
        }
    }

    func run() throws {
        let daemonConfig = try loadConfig()
        if printIntrospection {
            print(Daemon.introspectionXML(config: daemonConfig), terminator: "")
            return
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let toJournal = JournalLogHandler.standardErrorIsJournal
        LoggingSystem.bootstrap { label in
            if toJournal { return JournalLogHandler(logLevel: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // Before any thread starts: the loop takes these through a signalfd.
        LoopSignals.blockInEveryThread(DaemonLifecycle.shutdownSignals)
        var settings = Daemon.Settings(bus: bus, config: daemonConfig, stateDirectory: try stateDirectory(), bootID: try bootID())
        let logger = Logger(label: "bgfetchd")
        do {
            let connection = try Daemon.connect(to: settings.bus)
            settings.systemBus = Daemon.connectSystemBus(serving: settings.bus)
            if settings.bus != .system {
                settings.desktopDirectories = DesktopEntry.searchDirectories(environment: ProcessInfo.processInfo.environment)
            }
            try DaemonLifecycle.run(on: connection, settings: settings, logger: logger)
        } catch {
            fail(error.description)
        }
    }

    private var bus: BusAddress {
        if system { return .system }
        if let address { return .address(address) }
        return .session
    }

    private func loadConfig() throws -> DaemonConfig {
        var result = DaemonConfig()
        let path = config ?? (FileManager.default.fileExists(atPath: "/etc/bgfetch/bgfetchd.conf") ? "/etc/bgfetch/bgfetchd.conf" : nil)
        if let path {
            do { result = try DaemonConfig.load(path: path) } catch { fail("invalid config: \(error.description)") }
        }
        if let floor = minimumIntervalFloor { result.minimumIntervalFloor = floor }
        if let timeout = fetchTimeout { result.fetchTimeout = timeout }
        return result
    }

    private func stateDirectory() throws -> String {
        if let stateDir { return stateDir }
        if system { return "/var/lib/bgfetch" }
        let environment = ProcessInfo.processInfo.environment
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/bgfetch" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/state/bgfetch"
    }

    private func bootID() throws -> String {
        guard let text = try? String(contentsOfFile: bootIdFile, encoding: .utf8) else {
            fail("cannot read the boot id from \(bootIdFile)")
        }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !id.isEmpty else { fail("the boot id file \(bootIdFile) is empty") }
        return id
    }

    private func fail(_ reason: String) -> Never {
        FileHandle.standardError.write(Data("bgfetchd: \(reason)\n".utf8))
        Glibc.exit(1)
    }
}
