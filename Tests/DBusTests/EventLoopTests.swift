import DBus
import TestKit
import Foundation
import Synchronization
import Testing

/// The life of a loop and its connections: what happens to work in flight
/// and work that comes too late.
@Suite struct EventLoopTests {
    let bus: PrivateBus
    init() throws { bus = try PrivateBus() }

    @Test func closingFailsTheCallsInFlight() async throws {
        let (peer, received) = try bus.silentPeer(named: "org.example.Silent")
        defer { peer.close() }
        let client = try bus.connect()
        let outcome = Task { () -> DBusError? in
            do throws(DBusError) {
                _ = try await client.call(try call("org.example.Silent"), timeoutMilliseconds: 60_000)
                return nil
            } catch { return error }
        }
        var arrivals = received.makeAsyncIterator()
        await arrivals.next()  // the call is in flight: the peer holds it unanswered
        client.close()
        let error = await outcome.value
        #expect(error?.name == DBusError.Name.disconnected)
    }

    @Test func callsAfterCloseFailAtOnce() async throws {
        let client = try bus.connect()
        _ = try await client.callBus("GetId", [])  // positive control: it works while open
        client.close()
        #expect(throws: DBusError.self) { try client.callBus("GetId") }
        await #expect(throws: DBusError.self) { try await client.callBus("GetId", []) }
        #expect(client.send(try Message.busDriverCall("GetId")) == false)
        #expect(throws: DBusError.self) { try client.loop.sync { 1 } }
        #expect(client.loop.execute {} == false)
    }

    @Test func aPeerVanishingMidCallEndsTheCall() async throws {
        let (peer, received) = try bus.silentPeer(named: "org.example.Vanishing")
        let client = try bus.connect()
        defer { client.close() }
        let outcome = Task { () -> DBusError? in
            do throws(DBusError) {
                _ = try await client.call(try call("org.example.Vanishing"), timeoutMilliseconds: 60_000)
                return nil
            } catch { return error }
        }
        var arrivals = received.makeAsyncIterator()
        await arrivals.next()
        peer.close()
        let error = await outcome.value
        #expect(error?.name == DBusError.Name.noReply)
    }

    @Test func timersStopWithTheirLoop() async throws {
        let loop = try EventLoop(name: "timer-test")
        let fired = Mutex<[LoopTimer.Event]>([])
        let (firstFire, continuation) = AsyncStream<Void>.makeStream()
        try loop.sync { () throws(DBusError) -> Void in
            // A wall-clock time already past fires at once: the positive control.
            let past = try loop.makeTimer(clock: .wallClock) { event in
                fired.withLock { $0.append(event) }
                continuation.yield()
            }
            past.arm(atWallClockMicroseconds: 1)
        }
        var iterator = firstFire.makeAsyncIterator()
        await iterator.next()
        try loop.sync { () throws(DBusError) -> Void in
            let later = try loop.makeTimer { event in fired.withLock { $0.append(event) } }
            later.arm(afterNanoseconds: 50_000_000)
            loop.shutdown()  // on the loop: it stops before it looks at its timers again
        }
        try await Task.sleep(for: .milliseconds(300))  // well past the second timer's time: it must stay silent
        // (A clock step by a test running alongside may add a clockChanged
        // to the wall-clock timer; only expirations matter here.)
        #expect(fired.withLock { $0 }.filter { $0 == .elapsed } == [.elapsed])
        #expect(loop.execute {} == false)
    }

    /// inotify through the loop: a file written in a watched directory
    /// wakes it; a directory that does not exist is left out.
    @Test(.timeLimit(.minutes(1))) func aDirectoryWatchReportsChanges() async throws {
        let loop = try EventLoop(name: "watch-test")
        defer { loop.shutdown() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bgfetch-watch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (changes, continuation) = AsyncStream<Void>.makeStream()
        let watched = try loop.sync { () throws(DBusError) -> [String] in
            try loop.watchDirectories([directory.path, "/nonexistent/bgfetch"]) { continuation.yield() }.watched
        }
        #expect(watched == [directory.path])
        try "[Desktop Entry]\n".write(to: directory.appendingPathComponent("a.desktop"), atomically: true, encoding: .utf8)
        var iterator = changes.makeAsyncIterator()
        await iterator.next()  // would hang (and time out) without the event
    }

    @Test func oneLoopServesSeveralConnections() async throws {
        let loop = try EventLoop(name: "shared")
        defer { loop.shutdown() }
        let first = try bus.connect(on: loop)
        let second = try bus.connect(on: loop)
        #expect(first.loop === second.loop)
        async let a = first.callBus("GetNameOwner", [.string(second.uniqueName)])
        async let b = second.callBus("GetNameOwner", [.string(first.uniqueName)])
        #expect(try await a.first?.stringValue == second.uniqueName)
        #expect(try await b.first?.stringValue == first.uniqueName)
        // Closing one leaves the other served.
        first.close()
        #expect(try await second.callBus("GetId", []).count == 1)
        #expect(loop.isRunning)
    }

    @Test func blockingCallsAreRefusedOnTheLoop() throws {
        let client = try bus.connect()
        defer { client.close() }
        let refusal = try client.loop.sync { () throws(DBusError) -> DBusError? in
            do throws(DBusError) {
                _ = try client.callBus("GetId")
                return nil
            } catch { return error }
        }
        #expect(refusal?.message.contains("stall") == true)
        #expect(throws: DBusError.self) { try client.loop.sync { () throws(DBusError) in try PrivateBusConnector.connect(bus, on: client.loop) } }
    }

    @Test func anActorOnTheLoopRunsOnItsThread() async throws {
        let loop = try EventLoop(name: "actor-test")
        let counter = LoopCounter(loop: loop)
        #expect(await counter.increment() == true)
        // A handler on the loop reaches the actor's state synchronously.
        let client = try bus.connect(on: loop)
        let seen = try loop.sync { counter.assumeIsolated { $0.count } }
        #expect(seen == 1)
        client.close()
        loop.shutdown()
        // After shutdown, work for the actor still runs, one job at a time, off the loop.
        #expect(await counter.increment() == false)
        #expect(await counter.count == 2)
    }
}

enum PrivateBusConnector {
    static func connect(_ bus: PrivateBus, on loop: EventLoop) throws(DBusError) {
        _ = try BusConnection.connect(.address(bus.address), on: loop)
    }
}

actor LoopCounter {
    nonisolated let loop: EventLoop
    var count = 0
    init(loop: EventLoop) { self.loop = loop }
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    /// Counts; says whether it ran on the loop's thread.
    func increment() -> Bool {
        count += 1
        return loop.inLoop
    }
}
