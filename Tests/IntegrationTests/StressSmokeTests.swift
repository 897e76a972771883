import Foundation
import Testing

/// The short run of each part of the reliability suite (`bgfetch-stress
/// --quick`) against the debug `bgfetchd`, so the suite cannot rot. The long
/// run is `make stress`.
@Suite(
    .serialized, .timeLimit(.minutes(5)),
    .disabled(
        if: TestBusImplementation.isBroker,
        """
        bgfetch-stress starts its own buses whatever BGFETCH_TEST_BUS says, so on the broker pass this would \
        repeat the default pass exactly; its broker part (in the default pass) already runs fuzz, kill9, \
        misbehaving and churn on dbus-broker
        """))
struct StressSmokeTests {
    static var stress: String { Paths.products.appendingPathComponent("bgfetch-stress").path }

    /// Waited for off the test threads: the parts run for a minute in all.
    func run(_ part: String, timeout: TimeInterval = 240) async throws {
        let result = try await Command.runOffThePool(
            Self.stress, ["--quick", "--part", part, "--bgfetchd", Paths.bgfetchd], timeout: timeout)
        #expect(result.status == 0, "bgfetch-stress --part \(part):\n\(result.stdout)\n\(result.stderr)")
    }

    @Test func fuzzer() async throws { try await run("fuzz") }
    @Test func killNineStorm() async throws { try await run("kill9") }
    @Test func misbehavingApps() async throws { try await run("misbehaving") }
    @Test func churn() async throws { try await run("churn") }
    @Test func storageFaults() async throws { try await run("storage") }
    @Test func dbusBroker() async throws { try await run("broker") }
}
