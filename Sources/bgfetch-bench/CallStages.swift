import DBus
import Dispatch
import Foundation
import TestKit
import Synchronization

/// GetStatus against Peer.Ping to the same daemon over the same bus.
enum CallStages {
    /// Sequential round trips, made from a thread of the bench's own with
    /// blocking calls (the loop's thread refuses to block), interleaved so
    /// that drift on a noisy machine hits both alike. Microseconds.
    static func roundTrips(_ connection: BusConnection, count: Int) throws(BenchError) -> (getStatus: Sample, ping: Sample) {
        let handoff = Handoff<Result<([Double], [Double]), BenchError>>()
        Thread.detachNewThread {
            var getStatus: [Double] = []
            var ping: [Double] = []
            getStatus.reserveCapacity(count)
            ping.reserveCapacity(count)
            do throws(DBusError) {
                // Warm up: the daemon resolves the caller on its first call.
                let status = try connection.callBlocking(try Service.getStatus()).arguments
                guard status == [.uint32(3)] else {
                    handoff.put(.failure(BenchError("GetStatus answered \(status), not Available (3)")))
                    return
                }
                for _ in 0..<min(500, count) {
                    _ = try connection.callBlocking(try Service.getStatus())
                    _ = try connection.callBlocking(try Service.ping())
                }
                for index in 0..<count {
                    for statusFirst in index % 2 == 0 ? [true, false] : [false, true] {
                        let message = statusFirst ? try Service.getStatus() : try Service.ping()
                        let start = Clock.nanos()
                        _ = try connection.callBlocking(message, timeoutMilliseconds: 10_000)
                        let micros = Double(Clock.nanos() - start) / 1000
                        if statusFirst { getStatus.append(micros) } else { ping.append(micros) }
                    }
                }
                handoff.put(.success((getStatus, ping)))
            } catch {
                handoff.put(.failure(BenchError("a round trip failed: \(error)")))
            }
        }
        let (getStatus, ping) = try handoff.take().get()
        return (Sample(getStatus), Sample(ping))
    }

    struct Throughput {
        var callsPerSecond: Double
        /// The daemon's CPU time per call, where the kernel keeps it.
        var daemonMicrosPerCall: Double?
    }

    /// `total` calls made by `make`, `inFlight` at a time, from one
    /// connection with libdbus's pending-call (callback) API: each reply
    /// sends the next call.
    static func throughput(
        _ connection: BusConnection, daemonPID: Int32, total: Int, inFlight: Int,
        _ make: @escaping @Sendable () throws(DBusError) -> Message
    ) throws(BenchError) -> Throughput {
        let pump = Pump(connection: connection, total: total, make: make)
        let cpuBefore = ProcStats.cpuNanos(daemonPID)
        let (seconds, failure) = pump.run(inFlight: inFlight)
        let cpuAfter = ProcStats.cpuNanos(daemonPID)
        if let failure { throw BenchError("a call failed: \(failure)") }
        var perCall: Double?
        if let cpuBefore, let cpuAfter { perCall = Double(cpuAfter - cpuBefore) / 1000 / Double(total) }
        return Throughput(callsPerSecond: Double(total) / seconds, daemonMicrosPerCall: perCall)
    }
}

/// Keeps a fixed number of calls in flight on one connection. It runs on
/// the connection's loop, as an actor whose executor is the loop.
private actor Pump {
    let connection: BusConnection
    let total: Int
    let make: @Sendable () throws(DBusError) -> Message
    private var issued = 0
    private var completed = 0
    private var failure: DBusError?
    private var started: UInt64 = 0
    private let done = Handoff<(Double, DBusError?)>()

    nonisolated var unownedExecutor: UnownedSerialExecutor { connection.loop.asUnownedSerialExecutor() }

    init(connection: BusConnection, total: Int, make: @escaping @Sendable () throws(DBusError) -> Message) {
        self.connection = connection
        self.total = total
        self.make = make
    }

    /// Returns the seconds from the first call out to the last reply in.
    nonisolated func run(inFlight: Int) -> (Double, DBusError?) {
        connection.loop.execute {
            self.assumeIsolated { pump in
                pump.started = Clock.nanos()
                for _ in 0..<min(inFlight, pump.total) { pump.issue() }
            }
        }
        return done.take()
    }

    private func issue() {
        issued += 1
        let message: Message
        do throws(DBusError) { message = try make() } catch {
            completeOne(.failure(error))
            return
        }
        connection.call(message, timeoutMilliseconds: 30_000) { result in
            self.assumeIsolated { $0.completeOne(result) }
        }
    }

    private func completeOne(_ result: Result<Message, DBusError>) {
        completed += 1
        if case .failure(let error) = result, failure == nil { failure = error }
        if failure == nil && issued < total {
            issue()
        } else if completed == issued {
            done.put((Double(Clock.nanos() - started) / 1e9, failure))
        }
    }
}
