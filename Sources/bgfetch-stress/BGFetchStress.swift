import ArgumentParser
import Foundation
import Glibc
import TestKit

/// The reliability suite: attacks a real `bgfetchd` on a private bus and
/// checks that it answers, survives, keeps every acknowledged change and
/// stays within its memory and descriptors.
@main
struct BGFetchStress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bgfetch-stress",
        abstract: "Reliability suite for bgfetchd: fuzzer, kill -9 storm, misbehaving apps, churn, storage faults, dbus-broker.",
        discussion: """
            Each part starts its own private bus (TestKit's SessionBusConfig) and bgfetchd with a temporary \
            state directory, prints progress lines and ends with a summary; the exit status is non-zero if any \
            check failed. --quick (the default) takes seconds per part; --full is `make stress`.

              fuzz         every introspected member with boundary, random and wrong-signature arguments, no \
                           interface field, NO_REPLY_EXPECTED: every call answered, the daemon alive, RSS and fds bounded
              kill9        8 clients change tasks while bgfetchd is SIGKILLed (5 / 60 times); the files and the \
                           restarted daemon hold every acknowledged change; PRAGMA integrity_check is ok
              misbehaving  apps (28 / 336, child processes) that never answer, answer twice, late or with another \
                           app's id, SIGSTOP themselves, leave mid-fetch or flood; a well-behaved app's GetStatus \
                           latency and fetches
              churn        500 / 10,000 connect-register-disconnect cycles: no task left, RSS and fds back within 10 %
              storage      (root; own mount namespace) a full tmpfs state directory, a truncated database, a deleted WAL
              broker       (root; dbus-broker installed) the parts above on dbus-broker, plus a delivery round trip
            """)

    enum Part: String, CaseIterable, ExpressibleByArgument, Sendable {
        case fuzz, kill9, misbehaving, churn, storage, broker
    }

    @Option(help: ArgumentHelp("The bgfetchd binary to attack.", valueName: "PATH")) var bgfetchd: String?
    @Flag(help: "The long run (make stress).") var full = false
    @Flag(help: "The short run (the default without --full).") var quick = false
    @Option(name: .customLong("part"), help: "Run only this part (repeatable): \(Part.allCases.map(\.rawValue).joined(separator: ", ")).")
    var parts: [Part] = []
    @Option(help: "Seed of the random choices (default: from the clock).") var seed: UInt64?
    @Flag(help: "The misbehaving apps also subscribe to every signal of the service (the FetchFinished broadcast too), as monitors do.")
    var appsWatchBroadcasts = false
    @Option(name: .customLong("app-mode"), help: "Misbehaving part: only apps of this mode (repeatable): \(AppMode.allCases.map(\.rawValue).joined(separator: ", ")).")
    var appModes: [AppMode] = []

    // Sub-modes: a misbehaving app, and the storage and broker parts inside their own mount namespace.
    @Option(help: .hidden) var actAsApp: AppMode?
    @Option(help: .hidden) var address: String?
    @Option(help: .hidden) var appPrefix = "org.stress.app"
    @Option(help: .hidden) var apps = 1
    @Option(help: .hidden) var duration: Double = 10
    @Option(help: .hidden) var fetchTimeout: Double = 2
    @Flag(help: .hidden) var inNamespace = false
    /// Checks the checker: the kill -9 storm deletes the WAL after each kill, so acknowledged changes are lost.
    @Flag(help: .hidden) var sabotageWal = false
    @Option(help: .hidden) var summaryFile: String?

    func validate() throws {
        if full && quick { throw ValidationError("choose one of --full and --quick") }
        if actAsApp == nil, bgfetchd == nil { throw ValidationError("--bgfetchd PATH is required") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        if let mode = actAsApp {
            let code = AppProcess(
                mode: mode, address: address ?? "", prefix: appPrefix, count: apps, duration: duration,
                fetchTimeout: fetchTimeout, allSignals: appsWatchBroadcasts
            ).run()
            throw ExitCode(code)
        }
        let settings = Settings(
            bgfetchd: bgfetchd!, full: full, seed: seed ?? UInt64(Date().timeIntervalSince1970 * 1000),
            selfPath: Self.selfPath, appsWatchBroadcasts: appsWatchBroadcasts,
            appModes: appModes.isEmpty ? AppMode.allCases : appModes, sabotageWAL: sabotageWal)
        let selected = parts.isEmpty ? Part.allCases : parts
        if !inNamespace {
            print("bgfetch-stress: \(full ? "full" : "quick") run of \(selected.map(\.rawValue).joined(separator: ", ")); seed \(settings.seed); bgfetchd \(settings.bgfetchd)")
        }
        fflush(nil)
        var reports: [PartReport] = []
        for part in selected {
            let report = PartReport(part.rawValue)
            let started = Clocks.now
            do {
                try Self.run(part, settings: settings, report: report, inNamespace: inNamespace)
            } catch {
                report.check(false, "the part ran to its end", "\(error)")
            }
            report.figure("time", String(format: "%.1f s", Clocks.now - started))
            report.progress(report.isSkipped ? "skipped" : report.passed ? "passed" : "FAILED")
            reports.append(report)
        }
        if inNamespace {
            if let summaryFile {
                try? reports.map(\.summary).joined().write(toFile: summaryFile, atomically: true, encoding: .utf8)
            }
            if reports.contains(where: { !$0.passed }) { throw ExitCode(1) }
            return
        }
        print("\n==== bgfetch-stress summary (\(full ? "full" : "quick"), seed \(settings.seed)) ====")
        for report in reports { print(report.summary, terminator: "") }
        let failed = reports.filter { !$0.passed }.count
        let skipped = reports.filter { $0.isSkipped }.count
        print("stress: \(reports.count - failed - skipped) passed, \(failed) failed, \(skipped) skipped")
        if failed > 0 { throw ExitCode(1) }
    }

    static func run(_ part: Part, settings: Settings, report: PartReport, inNamespace: Bool) throws {
        switch part {
        case .fuzz: try Fuzzer(settings: settings, report: report).run()
        case .kill9: try KillStorm(settings: settings, report: report).run()
        case .misbehaving: try Misbehaving(settings: settings, report: report).run()
        case .churn: try Churn(settings: settings, report: report).run()
        case .storage:
            if inNamespace {
                try StorageFaults(settings: settings, report: report).run()
            } else {
                try Namespaced.rerun(part, settings: settings, report: report)
            }
        case .broker:
            if inNamespace {
                try BrokerSmoke(settings: settings, report: report).run()
            } else {
                try Namespaced.rerun(part, settings: settings, report: report)
            }
        }
    }

    /// This program's own path, to start it again as an app or in a namespace.
    static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// What every part needs to know.
struct Settings: Sendable {
    let bgfetchd: String
    let full: Bool
    let seed: UInt64
    let selfPath: String
    /// The misbehaving apps subscribe to the FetchFinished broadcast too.
    var appsWatchBroadcasts = false
    /// The kinds of misbehaving apps.
    var appModes: [AppMode] = AppMode.allCases
    /// The kill -9 storm loses the WAL on purpose (to show that its checks catch a lost change).
    var sabotageWAL = false
    /// Which bus implementation the parts run on.
    var bus: BusKind = .dbusDaemon

    func scaled<T>(quick: T, full: T) -> T { self.full ? full : quick }
    var generator: SplitMix64 { SplitMix64(seed: seed) }

    /// The daemon every part uses: `bgfetchd` on `bus` with a one-second
    /// interval floor (plus `arguments`), started and owning its name.
    func startDaemon(on bus: PrivateBus, arguments: [String] = [], stateDirectory: String? = nil) throws -> DaemonUnderTest {
        let daemon = try DaemonUnderTest(
            executable: bgfetchd, address: bus.address, directory: bus.directory,
            arguments: ["--minimum-interval-floor", "1"] + arguments, stateDirectory: stateDirectory, bootID: "stress-boot-1")
        try daemon.start()
        return daemon
    }
}

/// Runs a part again in a child of this program inside its own mount
/// namespace (`unshare -m`), so the mounts it makes never reach the host.
enum Namespaced {
    static func rerun(_ part: BGFetchStress.Part, settings: Settings, report: PartReport) throws {
        guard geteuid() == 0 else { return report.skip("needs root for its own mount namespace") }
        let candidates: [String] = ["/usr/bin/unshare", "/bin/unshare"]
        guard let unshare = candidates.first(where: { access($0, X_OK) == 0 }) else {
            return report.skip("unshare(1) is not installed")
        }
        let output = try PrivateBus.makeTemporaryDirectory("bgfetch-stress-ns") + "/summary"
        var arguments = [
            "--mount", "--propagation", "private", settings.selfPath, "--bgfetchd", settings.bgfetchd, "--part", part.rawValue,
            "--seed", String(settings.seed), "--in-namespace", "--summary-file", output,
        ]
        if settings.full { arguments.append("--full") }
        if settings.appsWatchBroadcasts { arguments.append("--apps-watch-broadcasts") }
        if settings.appModes != AppMode.allCases { arguments += settings.appModes.flatMap { ["--app-mode", $0.rawValue] } }
        // The child's progress lines go straight to our standard output.
        fflush(nil)
        let child = try ChildProcess(unshare, arguments, inheritOutput: true)
        let code = child.wait(timeout: settings.full ? 1800 : 300)
        child.terminate()
        if let text = try? String(contentsOfFile: output, encoding: .utf8) { report.attach(text) }
        try? FileManager.default.removeItem(atPath: (output as NSString).deletingLastPathComponent)
        report.check(code == 0, "the part passed in its own mount namespace", "exit status \(code.map(String.init) ?? "none (killed after the time limit)")")
    }
}
