import Foundation
import Testing

/// `bgfetch-bench --quick` against the debug bgfetchd, so the bench cannot rot.
/// It checks that every figure was measured and printed, never the targets:
/// the machines are shared and noisy, and `make bench` is where figures count.
@Suite(
    .timeLimit(.minutes(3)),
    .disabled(
        if: TestBusImplementation.isBroker,
        """
        bgfetch-bench starts its own dbus-daemon whatever BGFETCH_TEST_BUS says, so on the broker pass this \
        would repeat the default pass exactly
        """))
struct BenchSmokeTests {
    static let figures = [
        "GetStatus round trip (median)",
        "GetStatus throughput, 64 in flight",
        "RegisterTask durable/s, 1 client",
        "RegisterTask durable/s, 16 clients",
        "restore: start until name owned",
        "restore: peak RSS (VmHWM)",
        "restore after a new boot",
        "restore, bound apps departed",
        "due together: p99 FetchRequested lateness",
        "idle: daemon context switches",
        "waiting tasks released: wake-ups",
        "waiting tasks released: last FetchRequested",
        "simulated day: wake-ups per fetch",
        "simulated day: wake-ups vs systemd",
        "simulated day: fetches out of window",
        "simulated day: fetches, adaptive",
    ]

    @Test func aQuickRunMeasuresEveryFigure() async throws {
        let bench = Paths.products.appendingPathComponent("bgfetch-bench").path
        let work = Paths.temporaryDirectory("bgfetch-bench-smoke")
        defer { try? FileManager.default.removeItem(at: work) }
        let result = try await Command.runOffThePool(
            bench, ["--quick", "--bgfetchd", Paths.bgfetchd, "--work-dir", work.path], timeout: 150)
        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for stage in 1...10 {
            #expect(lines.contains { $0.hasPrefix("[\(stage)/10] ") }, "no progress line for stage \(stage)\n\(result)")
        }
        for figure in Self.figures {
            let row = lines.first { $0.hasPrefix(figure) }
            #expect(row != nil, "no row '\(figure)'\n\(result)")
            guard let row else { continue }
            // A measured row ends with its verdict; an unmeasured one says so.
            #expect(!row.contains("NOT MEASURED") && !row.contains(" n/a "), "'\(figure)' was not measured\n\(result)")
            #expect(row.hasSuffix(" ok") || row.hasSuffix(" MISSED"), "'\(figure)' has no verdict: \(row)")
        }
        #expect(!result.stdout.contains("FAILED"), "\(result)")
    }
}
