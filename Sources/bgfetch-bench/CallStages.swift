import CBenchClient
import Foundation
import TestKit
import Synchronization

/// GetStatus against Peer.Ping to the same daemon over the same bus.
///
/// The calls are made by a plain C libdbus client (`Sources/CBenchClient`)
/// on a connection of its own to the bus at `address`: a Swift client costs
/// more per call than bgfetchd does, and saturated first.
enum CallStages {
    /// Which call to measure.
    enum Call: Sendable {
        /// GetStatus on the service's app interface.
        case getStatus
        /// `org.freedesktop.DBus.Peer.Ping` to the same name and path: the floor.
        case ping

        var c: bench_call { self == .getStatus ? BENCH_CALL_GET_STATUS : BENCH_CALL_PING }
    }

    /// Sequential round trips, interleaved (GetStatus first on even
    /// iterations, Ping first on odd ones) so that drift on a noisy machine
    /// hits both alike. Microseconds. The C client blocks the calling
    /// thread, which is the bench's own, not a loop's.
    static func roundTrips(address: String, count: Int) throws(HarnessError) -> (getStatus: Sample, ping: Sample) {
        let client = try CClient(address: address)
        defer { client.close() }
        // Warm up: the daemon resolves the caller on its first call.
        try client.checkStatus()
        var getStatus = [UInt64](repeating: 0, count: count)
        var ping = [UInt64](repeating: 0, count: count)
        try client.run("a round trip failed") { raw, error in
            bench_client_round_trips(raw, Int32(min(500, count)), Int32(count), &getStatus, &ping, error, CClient.errorSize)
        }
        return (Sample(getStatus.map { Double($0) / 1000 }), Sample(ping.map { Double($0) / 1000 }))
    }

    struct Throughput {
        var callsPerSecond: Double
        /// The daemon's CPU time per call, where the kernel keeps it.
        var daemonMicrosPerCall: Double?
        /// The share of the run the client's thread was on a CPU: well
        /// below 1, the client was not what limited the rate.
        var clientBusy: Double
    }

    /// `total` calls of `call`, `inFlight` at a time, on one connection:
    /// each reply lets the next call out.
    static func throughput(
        address: String, daemonPID: Int32, total: Int, inFlight: Int, calling call: Call
    ) throws(HarnessError) -> Throughput {
        let client = try CClient(address: address)
        defer { client.close() }
        // Warm up the new connection: the caller's identity, then a short run.
        try client.checkStatus()
        var seconds = 0.0
        var cpuSeconds = 0.0
        try client.run("a call failed") { raw, error in
            bench_client_throughput(
                raw, call.c, Int32(min(1_000, total)), Int32(inFlight), &seconds, &cpuSeconds, error, CClient.errorSize)
        }
        let cpuBefore = ProcStats.cpuNanos(daemonPID)
        try client.run("a call failed") { raw, error in
            bench_client_throughput(raw, call.c, Int32(total), Int32(inFlight), &seconds, &cpuSeconds, error, CClient.errorSize)
        }
        let cpuAfter = ProcStats.cpuNanos(daemonPID)
        var perCall: Double?
        if let cpuBefore, let cpuAfter { perCall = Double(cpuAfter - cpuBefore) / 1000 / Double(total) }
        let result = Throughput(callsPerSecond: Double(total) / seconds, daemonMicrosPerCall: perCall, clientBusy: cpuSeconds / seconds)
        CClient.noteHeadroom(result, call)
        return result
    }
}

/// One connection of the C client.
private final class CClient {
    static let errorSize = 512
    let raw: OpaquePointer

    init(address: String) throws(HarnessError) {
        var error = [CChar](repeating: 0, count: Self.errorSize)
        guard let raw = bench_client_open(address, ServiceClient.name, ServiceClient.path, ServiceClient.app, &error, Self.errorSize) else {
            throw HarnessError("the C client cannot connect to \(address): \(Self.text(error))")
        }
        self.raw = raw
    }

    func close() { bench_client_close(raw) }

    /// The message the C client wrote into an error buffer.
    static func text(_ error: [CChar]) -> String {
        String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs one of the C client's functions; a non-zero result throws its message.
    func run(_ what: String, _ body: (OpaquePointer, UnsafeMutablePointer<CChar>) -> Int32) throws(HarnessError) {
        var error = [CChar](repeating: 0, count: Self.errorSize)
        guard body(raw, &error) == 0 else { throw HarnessError("\(what): \(Self.text(error))") }
    }

    func checkStatus() throws(HarnessError) {
        var status: UInt32 = 0
        try run("GetStatus failed") { raw, error in bench_client_get_status(raw, &status, error, Self.errorSize) }
        guard status == 3 else { throw HarnessError("GetStatus answered \(status), not Available (3)") }
    }

    /// Whether the headroom line was printed: once per run, for the first Ping measurement.
    private static let headroomNoted = Mutex(false)

    /// Prints how busy the client was once, and again whenever it was busy
    /// enough that it may have been what limited the rate.
    static func noteHeadroom(_ result: CallStages.Throughput, _ call: CallStages.Call) {
        let first = call == .ping && headroomNoted.withLock { noted in
            defer { noted = true }
            return !noted
        }
        guard first || result.clientBusy > 0.6 else { return }
        progress(
            "      client (C libdbus): \(call == .ping ? "Ping" : "GetStatus") \(Format.rate(result.callsPerSecond)) "
                + "with the client's thread busy \(Format.fixed(result.clientBusy * 100, 0)) % of the time"
                + (result.clientBusy > 0.6 ? ": it may be what limits the rate" : ""))
    }
}
