import DBus
import Foundation
import TestKit
import Testing

/// The examples under `Examples/`, each run against a real daemon on a private bus.
@Suite(.timeLimit(.minutes(2)))
struct ExamplesTests {
    /// Runs an example that registers "refresh" and exits after answering one
    /// fetch; triggers it the way a developer would (`bgfetchctl trigger`).
    private func runFetcher(_ executable: String, _ arguments: [String], appID: String) async throws {
        let f = try Fixture()
        let app = try BackgroundProcess(executable, arguments, environment: f.bus.environment)
        let info = try await eventually("the example's task") { try f.client.allTasks()[appID]?["refresh"] }
        #expect(info["minimumInterval"] == .uint32(900))
        let trigger = try Command.run(Paths.bgfetchctl, ["trigger", appID, "refresh"], environment: f.bus.environment)
        let id = try #require(UInt64(trigger.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(trigger)")

        #expect(try await app.waitForExit() == 0, "stdout: \(app.stdout)\nstderr: \(app.stderr)")
        #expect(app.stdout.contains("answered fetch \(id) of refresh with NewData"), "\(app.stdout)")
        let finished = try await eventually("FetchFinished") {
            f.client.signals("FetchFinished").first { $0.arguments.first == .string(appID) }
        }
        #expect(finished.arguments == [.string(appID), .string("refresh"), .uint64(id), .uint32(2)])
    }

    @Test func swiftExampleRegistersReceivesAndAnswers() async throws {
        try await runFetcher(Paths.swiftExample, ["--once"], appID: "bgfetch-example")
    }

    @Test func swiftExampleIsUnderTwentyLines() throws {
        let source = try String(
            contentsOf: Paths.examples.appendingPathComponent("SwiftFetcher/main.swift"), encoding: .utf8)
        let code = source.split(separator: "\n").filter {
            let line = $0.trimmingCharacters(in: .whitespaces)
            return !line.isEmpty && !line.hasPrefix("//")
        }
        #expect(code.count < 20, "\(code.count) lines of code")
        #expect(source.contains("import BackgroundFetch"))
    }

    @Test func pythonExampleRegistersReceivesAndAnswers() async throws {
        try await runFetcher("/usr/bin/python3", [Paths.pythonExample, "--once"], appID: "org.bgfetch.ExamplePython")
    }

    @Test func shellWalkthroughDoesEveryStep() async throws {
        let f = try Fixture()
        let result = try Command.run("/bin/sh", [Paths.shellWalkthrough], environment: f.bus.environment)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.hasSuffix("Done.\n"))
        let idText = result.stdout.components(separatedBy: "request id ").dropFirst().first?.prefix { $0.isNumber }
        let id = try #require(idText.flatMap { UInt64($0) }, "\(result.stdout)")
        // It answered the fetch as the app "busctl", then removed the task.
        let finished = try await eventually("FetchFinished") { f.client.signals("FetchFinished").first }
        #expect(finished.arguments == [.string("busctl"), .string("walkthrough"), .uint64(id), .uint32(2)])
        #expect(try f.client.allTasks()["busctl"]?["walkthrough"] == nil)
    }

    @Test func shellWalkthroughFailsWithoutTheService() throws {
        let bus = try TestBus()
        let noService = try Command.run("/bin/sh", [Paths.shellWalkthrough], environment: bus.environment)
        #expect(noService.status != 0)
        // The script's own line names the service: the bus's wording differs between dbus-daemon and dbus-broker.
        #expect(noService.stderr.contains("walkthrough.sh: org.bgfetch.BackgroundFetch1 did not answer"), "\(noService)")
        let noBus = try Command.run("/bin/sh", [Paths.shellWalkthrough], environment: ["DBUS_SESSION_BUS_ADDRESS": ""])
        #expect(noBus.status != 0)
        #expect(noBus.stderr.contains("DBUS_SESSION_BUS_ADDRESS"))
    }
}
