import Foundation
import TestKit
import Testing

/// The daemon's command line: flags, exit codes and one-line reasons.
@Suite(.timeLimit(.minutes(2)))
struct CommandLineTests {
    @Test func versionAndHelp() throws {
        let version = try Command.run(Paths.bgfetchd, ["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.split(separator: ".").count == 3)
        let help = try Command.run(Paths.bgfetchd, ["--help"])
        #expect(help.status == 0)
        for flag in [
            "--session", "--system", "--address", "--state-dir", "--config", "--minimum-interval-floor", "--fetch-timeout",
            "--boot-id-file", "--log-level", "--print-introspection", "--version",
        ] {
            #expect(help.stdout.contains(flag), "help lacks \(flag)")
        }
    }

    @Test func aTakenNameExitsNonZeroWithOneLine() throws {
        let f = try Fixture()
        let second = try Command.run(
            Paths.bgfetchd, ["--address", f.bus.address, "--state-dir", f.bus.directory.appendingPathComponent("s2").path])
        #expect(second.status == 1)
        let lines = second.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(second.stderr)")
        #expect(lines.last?.hasPrefix("bgfetchd: ") == true)
        #expect(second.stderr.contains("already owned"))
        #expect(try f.client.call("GetStatus") == [.uint32(3)])
    }

    @Test func anUnreachableBusExitsNonZero() throws {
        let dir = Paths.temporaryDirectory()
        let result = try Command.run(Paths.bgfetchd, ["--address", "unix:path=\(dir.path)/none", "--state-dir", dir.path])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("bgfetchd: cannot connect"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func anInvalidConfigNamesTheProblem() throws {
        let dir = Paths.temporaryDirectory()
        let config = dir.appendingPathComponent("bad.conf")
        try "[Scheduling]\nMinimumIntervalFloor=60\nBogusKey=1\n".write(to: config, atomically: true, encoding: .utf8)
        let result = try Command.run(Paths.bgfetchd, ["--address", "unix:path=/nonexistent", "--config", config.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("BogusKey"))
        #expect(result.stderr.contains("line 3"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func conflictingBusFlagsAreAUsageError() throws {
        let result = try Command.run(Paths.bgfetchd, ["--session", "--system"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--session"))
    }

    @Test func sigtermAndSigintShutDownCleanly() throws {
        let f = try Fixture()
        try f.client.register("kept", .options(stopOnTerminate: false))
        #expect(try f.daemon.stop(signal: SIGTERM) == 0)
        try f.daemon.start()
        #expect(try f.daemon.stop(signal: SIGINT) == 0)
        try f.daemon.start()
        #expect(try f.client.tasks().keys.sorted() == ["kept"])
    }

    @Test func theIdleDaemonMakesNoWakeUps() throws {
        let f = try Fixture()
        for n in 0..<20 { try f.client.register("far-\(n)", .options(interval: 86_400)) }
        let pid = try #require(f.daemon.pid)
        usleep(300_000)
        let before = ProcStats.totalContextSwitches(pid)
        usleep(3_000_000)
        let after = ProcStats.totalContextSwitches(pid)
        #expect(before > 0, "the daemon's threads are readable in /proc")
        #expect(after - before <= 2, "the idle daemon switched context \(after - before) times in 3 s")
    }
}
