import Foundation
import TestKit
import DBus

/// Durable RegisterTask calls: each reply comes after the daemon's SQLite
/// commit, so the rate is bounded by how the daemon commits.
enum RegisterStage {
    struct Outcome {
        var callsPerSecond: Double
        var calls: Int
        /// Per-call round trips, milliseconds.
        var latency: Sample
        /// The first and the last tenth of each client's calls: the daemon
        /// holds more tasks at the end.
        var early: Sample
        var late: Sample
    }

    /// Every client registers new tasks (`t<firstIndex>`, ...; each client is
    /// its own app) back to back for `seconds`, all at once, each with
    /// blocking calls from a thread of its own (a loop's thread refuses them).
    static func run(_ clients: [ServiceClient], seconds: Double, firstIndex: Int) throws(HarnessError) -> Outcome {
        struct ClientRun: Sendable {
            var start: UInt64
            var end: UInt64
            var latencies: [Double]
        }
        let deadline = Clocks.nanos + UInt64(seconds * 1e9)
        let handoffs = clients.map { client in
            let handoff = Handoff<Result<ClientRun, HarnessError>>()
            Thread.detachNewThread {
                var run = ClientRun(start: Clocks.nanos, end: 0, latencies: [])
                var index = firstIndex
                do throws(DBusError) {
                    while Clocks.nanos < deadline {
                        let message = try ServiceClient.message(
                            "RegisterTask", [.string("t\(index)"), .vardict(.options(interval: 3600, stopOnTerminate: false))])
                        let start = Clocks.nanos
                        _ = try client.connection.callBlocking(message, timeoutMilliseconds: 30_000)
                        run.end = Clocks.nanos
                        run.latencies.append(Double(run.end - start) / 1e6)
                        index += 1
                    }
                    handoff.put(.success(run))
                } catch {
                    handoff.put(.failure(HarnessError("RegisterTask #\(index) failed: \(error)")))
                }
            }
            return handoff
        }
        var runs: [ClientRun] = []
        var firstFailure: HarnessError?
        for handoff in handoffs {
            switch handoff.take() {
            case .success(let run): runs.append(run)
            case .failure(let error): firstFailure = firstFailure ?? error
            }
        }
        if let firstFailure { throw firstFailure }
        let calls = runs.reduce(0) { $0 + $1.latencies.count }
        let start = runs.map(\.start).min() ?? 0
        let end = runs.map(\.end).max() ?? 0
        guard calls > 0, end > start else { throw HarnessError("no RegisterTask call finished") }
        let tenths = runs.map { run in (run.latencies.count + 9) / 10 }
        return Outcome(
            callsPerSecond: Double(calls) / (Double(end - start) / 1e9), calls: calls,
            latency: Sample(runs.flatMap(\.latencies)),
            early: Sample(zip(runs, tenths).flatMap { run, tenth in run.latencies.prefix(tenth) }),
            late: Sample(zip(runs, tenths).flatMap { run, tenth in run.latencies.suffix(tenth) }))
    }
}
