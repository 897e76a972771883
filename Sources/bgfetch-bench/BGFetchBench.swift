import ArgumentParser
import Foundation
import TestKit
import Glibc

/// `bgfetch-bench`: the figures of issue 5, each against its floor, in one run.
@main
struct BGFetchBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bgfetch-bench",
        abstract: "Measure bgfetchd against the bus's and the disk's own floors on a private bus.",
        discussion: """
            Starts a private dbus-daemon and bgfetchd (with a config file that raises the task limits) \
            in a temporary work folder, measures each figure side by side with its floor, and prints a \
            table with the ratio and the target. A missed target is printed as MISSED; the exit status \
            is non-zero only when a figure could not be measured.
            """)

    @Option(help: ArgumentHelp("The bgfetchd to measure (a release build).", valueName: "PATH"))
    var bgfetchd: String

    @Flag(help: "A fast smoke run: small counts, a few seconds in all. Its verdicts mean little.")
    var quick = false

    @Option(help: ArgumentHelp("Length of the idle window (default 60, 1 with --quick).", valueName: "SECONDS"))
    var idleSeconds: Double?

    @Option(help: ArgumentHelp("Where to make the temporary work folder; the durable figures are about its disk.", valueName: "DIR"))
    var workDir = "/var/tmp"

    @Flag(help: "Keep the work folder (databases, logs) instead of removing it.")
    var keepWorkDir = false

    @Option(help: ArgumentHelp("The dbus-daemon configuration (default: the private session bus every suite uses).", valueName: "FILE"))
    var busConfig: String?

    @Option(
        name: .customLong("only"), parsing: .upToNextOption,
        help: ArgumentHelp("Run only these stages, 2–8 (stage 1 always runs), e.g. to profile one.", valueName: "STAGE"))
    var onlyStages: [Int] = []

    @Option(help: ArgumentHelp("The dbus-daemon to run.", valueName: "PATH"))
    var dbusDaemon = "/usr/bin/dbus-daemon"

    func validate() throws {
        guard access(bgfetchd, X_OK) == 0 else { throw ValidationError("--bgfetchd \(bgfetchd) is not an executable") }
        guard access(dbusDaemon, X_OK) == 0 else { throw ValidationError("--dbus-daemon \(dbusDaemon) is not an executable") }
        if onlyStages.contains(where: { !(1...Stages.count).contains($0) }) {
            throw ValidationError("--only takes stage numbers from 1 to \(Stages.count)")
        }
        if let idleSeconds, !(idleSeconds > 0 && idleSeconds <= 3600) {
            throw ValidationError("--idle-seconds must be more than 0 and at most 3600")
        }
    }

    func run() throws {
        var scale = quick ? Scale.quick : Scale.full
        if let idleSeconds { scale.idleSeconds = idleSeconds }
        guard let base = realpath(workDir, nil) else { throw ValidationError("--work-dir \(workDir) does not exist") }
        defer { free(base) }
        let directory = try PrivateBus.makeTemporaryDirectory("bgfetch-bench", in: String(cString: base))
        defer {
            if keepWorkDir {
                progress("work folder kept: \(directory)")
            } else {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        let report: Report
        do {
            let lab = try Lab(
                directory: directory, bgfetchd: bgfetchd, dbusDaemon: dbusDaemon,
                busConfig: busConfiguration())
            defer { lab.bus.stop() }
            progress(
                "bgfetch-bench\(quick ? " --quick" : ""): \(bgfetchd); work folder \(directory) on "
                    + "\(ProcStats.fileSystem(of: directory)); \(ProcessInfo.processInfo.activeProcessorCount) CPUs; "
                    + "Linux \(ProcessInfo.processInfo.operatingSystemVersionString); load average \(ProcStats.loadAverage())")
            report = Stages(lab: lab, scale: scale, only: onlyStages.isEmpty ? nil : Set(onlyStages)).runAll()
        }
        print("")
        print("load average at the end: \(ProcStats.loadAverage())")
        print(report.render())
        if !report.notes.isEmpty {
            print("")
            for note in report.notes { print("note: \(note)") }
        }
        let missed = report.missed
        print("")
        if quick { print("quick run: small counts; the verdicts above are not the figures issue 5 asks for") }
        if !report.everythingMeasured {
            print("NOT MEASURED: some figures could not be measured (see above)")
        } else if missed.isEmpty {
            print("every target met")
        }
        if !missed.isEmpty { print("MISSED \(missed.count) target(s): " + missed.map(\.label).joined(separator: "; ")) }
        fflush(nil)
        if !report.everythingMeasured { throw ExitCode(1) }
    }

    /// The bus configuration: the file given, or the suites' session bus.
    private func busConfiguration() -> PrivateBus.Config { busConfig.map { .file($0) } ?? .session }

}
