import DBus
import Foundation
import TestKit

/// Many tasks falling due at the same instant: how late their
/// `FetchRequested` signals reach the apps.
///
/// The tasks are written into the state in the daemon's schema, bound to
/// the unique names of client connections that are already on the bus and
/// own their apps' names, with a last fetch that makes every one of them due
/// at the same microsecond `T`. The daemon starts within the same boot, keeps
/// those bindings (the contract: a binding whose connection is still on the
/// bus is kept), arms its timer for `T` and sends every fetch to its
/// connection. Lateness is each signal's arrival (CLOCK_REALTIME, stamped on
/// the client connection's thread) minus `T`. A lone task due alone earlier,
/// at `T0`, shows the cost of the timer and one fetch. The bus's own floor
/// for the burst: after the daemon is gone, a plain client sends the same
/// number of unicast signals to the same connections in one go, and their
/// arrival after the first one left is measured the same way.
enum DueStage {
    struct Outcome {
        /// Milliseconds after `T`.
        var lateness: Sample
        var expected: Int
        /// Milliseconds after `T0`.
        var loneLateness: Double?
        /// Milliseconds after the bus-only burst started.
        var busOnly: Sample
    }

    static let loneInterval: UInt32 = 5
    static let burstInterval: UInt32 = 3600

    static func run(_ lab: Lab, template: String, count: Int, clients clientCount: Int, lead: Double) throws(HarnessError) -> Outcome {
        let folder = try RestoreStage.stateFolder(lab, "due", from: template)
        var clients: [ServiceClient] = []
        defer { for client in clients { client.close() } }
        let arrivals = (0...clientCount).map { _ in Arrivals() }
        for index in 0...clientCount {
            let app = index == clientCount ? "\(Lab.appPrefix).Lone" : "\(Lab.appPrefix).Due\(index)"
            clients.append(try arrivals[index].listen(lab, app: app, thread: "bench-due-\(index)"))
        }
        // T0 for the lone task, T for the burst; the lone task's window
        // (10 % of 5 s) closes before T, so batching keeps them apart.
        let loneDue = Clocks.unixMicros + Int64(lead * 1e6) + 500_000
        let due = loneDue + 1_000_000
        let bindings = clients.map(\.uniqueName)
        try StateSeeder.seed(path: folder + "/" + RestoreStage.databaseName, count: count + 1) { index in
            if index == count {
                return StateSeeder.Task(
                    appID: "\(Lab.appPrefix).Lone", name: "lone", interval: loneInterval,
                    registeredAt: loneDue - 20_000_000, lastFetch: loneDue - Int64(loneInterval) * 1_000_000,
                    binding: bindings[clientCount])
            }
            let client = index % clientCount
            return StateSeeder.Task(
                appID: "\(Lab.appPrefix).Due\(client)", name: "due\(index)", interval: burstInterval,
                registeredAt: due - 7_200_000_000, lastFetch: due - Int64(burstInterval) * 1_000_000,
                binding: bindings[client])
        }
        let daemon = try lab.startDaemon(stateDirectory: folder)
        let margin = Double(loneDue - Clocks.unixMicros) / 1e6
        guard margin > 0.2 else {
            try? daemon.stopCleanly()
            throw HarnessError("bgfetchd took its name only \(Format.fixed(margin, 2)) s before the first due time; raise the lead")
        }
        // Wait for every signal, at most 30 s after T.
        Arrivals.wait(for: count + 1, in: arrivals, timeout: Double(due - Clocks.unixMicros) / 1e6 + 30)
        try daemon.stopCleanly()
        let burst = arrivals[0..<clientCount].flatMap { $0.times }
        let lone = arrivals[clientCount].times.first
        guard burst.count == count else {
            throw HarnessError("only \(burst.count) of \(count) FetchRequested signals arrived within 30 s of the due time")
        }
        for recorder in arrivals { recorder.reset() }
        let busOnly = try busFloor(lab, to: Array(bindings[0..<clientCount]), count: count, arrivals: Array(arrivals[0..<clientCount]))
        return Outcome(
            lateness: Sample(burst.map { Double($0 - due) / 1000 }), expected: count,
            loneLateness: lone.map { Double($0 - loneDue) / 1000 }, busOnly: busOnly)
    }

    /// `count` FetchRequested-shaped signals from a plain client, queued in one
    /// go on its connection's thread as the daemon queues its burst.
    static func busFloor(
        _ lab: Lab, to destinations: [String], count: Int, arrivals: [Arrivals]
    ) throws(HarnessError) -> Sample {
        let sender = try lab.connect(thread: "bench-burst").connection
        defer { sender.close() }
        let started = Handoff<Result<Int64, HarnessError>>()
        sender.loop.execute {
            let start = Clocks.unixMicros
            do throws(DBusError) {
                for index in 0..<count {
                    let signal = try Message.signal(
                        path: ServiceClient.path, interface: ServiceClient.app, member: "FetchRequested",
                        destination: destinations[index % destinations.count], [.string("due\(index)"), .uint64(UInt64(index))])
                    sender.send(signal)
                }
                started.put(.success(start))
            } catch {
                started.put(.failure(HarnessError("cannot build a signal: \(error)")))
            }
        }
        let start = try started.take().get()
        Arrivals.wait(for: count, in: arrivals, timeout: 30)
        let times = arrivals.flatMap(\.times)
        guard times.count == count else { throw HarnessError("only \(times.count) of \(count) signals from a plain client arrived") }
        return Sample(times.map { Double($0 - start) / 1000 })
    }
}

/// Arrival times of signals at one client.
final class Arrivals: Sendable {
    /// A client that owns `app` and records here when each FetchRequested arrives.
    func listen(_ lab: Lab, app: String, thread: String) throws(HarnessError) -> ServiceClient {
        try lab.connect(app: app, thread: thread) { [stamps] message in
            if message.member == "FetchRequested" { stamps.withLock { $0.append(Clocks.unixMicros) } }
        }
    }

    private let stamps = Locked<[Int64]>([])
    var times: [Int64] { stamps.value }
    var count: Int { stamps.withLock { $0.count } }
    func reset() { stamps.withLock { $0.removeAll() } }

    /// Waits until `recorders` hold `total` arrivals between them, or
    /// `timeout` seconds pass; the caller counts what came.
    static func wait(for total: Int, in recorders: some Collection<Arrivals>, timeout: Double) {
        _ = try? pollUntil("\(total) signals", timeout: max(timeout, 0)) { recorders.reduce(0) { $0 + $1.count } >= total ? true : nil }
    }
}
