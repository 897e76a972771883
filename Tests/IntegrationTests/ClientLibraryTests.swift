import BackgroundFetch
import DBus
import Foundation
import Synchronization
import TestKit
import Testing

/// The `BackgroundFetch` library against the real daemon on a private bus.
@Suite(.timeLimit(.minutes(2)))
struct ClientLibraryTests {
    /// The app id the library's connection takes (as a bus name).
    static let appID = "org.example.Library"

    private func library(_ address: String) async throws -> BackgroundFetchClient {
        try await BackgroundFetchClient(bus: .address(address), appID: Self.appID)
    }

    /// `Manager.GetHistory` of one of the library app's tasks: (requested, finished, result).
    private func history(_ client: ServiceClient, _ task: String) throws -> [(requested: UInt64, finished: UInt64, result: UInt32)] {
        let reply = try client.call("GetHistory", [.string(Self.appID), .string(task)], interface: ServiceClient.manager)
        return (reply.first?.arrayValue ?? []).compactMap { row in
            guard let f = row.structValue, let r = f[0].uint64Value, let d = f[1].uint64Value, let x = f[2].uint32Value
            else { return nil }
            return (r, d, x)
        }
    }

    // MARK: Fetches

    @Test func handlerResultReachesFinishFetch() async throws {
        let f = try Fixture()
        let fetch = try await library(f.bus.address)
        defer { fetch.close() }
        let seen = Mutex<FetchContext?>(nil)
        fetch.defineTask("refresh") { context in
            seen.withLock { $0 = context }
            return .newData
        }
        let done = StreamRecorder(fetch.completedFetches())
        try await fetch.registerTask("refresh", options: BackgroundFetchOptions(minimumInterval: .seconds(60)))
        let id = try await fetch.triggerFetch("refresh")

        let completed = try #require(try await done.wait().first)
        #expect(completed == CompletedFetch(taskName: "refresh", requestID: id, result: .newData, cancelled: false, acknowledged: true))
        let context = try #require(seen.withLock { $0 })
        #expect(context.taskName == "refresh" && context.requestID == id)
        // The deadline is the service's FetchTimeout (30 s by default) from the fetch's arrival.
        #expect(context.timeRemaining > .seconds(20) && context.timeRemaining <= .seconds(30))

        let finished = try await eventually("FetchFinished") { f.client.signals("FetchFinished").first }
        #expect(finished.arguments == [.string(Self.appID), .string("refresh"), .uint64(id), .uint32(2)])
        let rows = try history(f.client, "refresh")
        #expect(rows.count == 1)
        #expect(rows.last?.result == 2)
        #expect((rows.last?.finished ?? 0) >= (rows.last?.requested ?? .max))
    }

    @Test func scheduledFetchRunsTheHandler() async throws {
        let f = try Fixture()
        let fetch = try await library(f.bus.address)
        defer { fetch.close() }
        fetch.defineTask("tick") { _ in .noData }
        let done = StreamRecorder(fetch.completedFetches())
        let registered = ContinuousClock.now
        try await fetch.registerTask("tick", options: BackgroundFetchOptions(minimumInterval: .seconds(1)))

        let completed = try #require(try await done.wait(timeout: .seconds(10)).first)
        #expect(completed.taskName == "tick" && completed.result == .noData && completed.acknowledged)
        // Never earlier than the interval.
        #expect(ContinuousClock.now - registered >= .milliseconds(900))
        #expect(try history(f.client, "tick").first?.result == 1)
    }

    @Test func throwingHandlerReportsFailed() async throws {
        struct Offline: Error {}
        let f = try Fixture()
        let fetch = try await library(f.bus.address)
        defer { fetch.close() }
        fetch.defineTask("refresh") { _ in throw Offline() }
        let done = StreamRecorder(fetch.completedFetches())
        try await fetch.registerTask("refresh")
        let id = try await fetch.triggerFetch("refresh")

        let completed = try #require(try await done.wait().first)
        #expect(completed == CompletedFetch(taskName: "refresh", requestID: id, result: .failed, cancelled: false, acknowledged: true))
        let rows = try history(f.client, "refresh")
        #expect(rows.last?.result == 3)
        #expect((rows.last?.finished ?? 0) > 0)  // answered, not expired
        let info = try #require(try await fetch.registeredTasks().first)
        #expect(info.lastResult == .failed && info.failureCount == 1)
    }

    @Test func aProcessWideDefinitionServesEveryObject() async throws {
        // Expo's TaskManager.defineTask: defined once, before any object exists.
        BackgroundFetchClient.defineTask("process-wide-task") { _ in .newData }
        let f = try Fixture()
        let fetch = try await library(f.bus.address)
        defer { fetch.close() }
        let done = StreamRecorder(fetch.completedFetches())
        try await fetch.registerTask("process-wide-task")
        let id = try await fetch.triggerFetch("process-wide-task")
        let completed = try #require(try await done.wait().first)
        #expect(completed.requestID == id && completed.result == .newData)
    }

    @Test func fetchWithoutAHandlerIsAnsweredFailed() async throws {
        let f = try Fixture()
        let fetch = try await library(f.bus.address)
        defer { fetch.close() }
        let done = StreamRecorder(fetch.completedFetches())
        try await fetch.registerTask("undefined")
        let id = try await fetch.triggerFetch("undefined")
        let completed = try #require(try await done.wait().first)
        #expect(completed.requestID == id && completed.result == .failed && completed.acknowledged)
        #expect(try history(f.client, "undefined").last?.result == 3)
    }

    @Test func slowHandlerIsCancelledAtTheDeadline() async throws {
        let f = try Fixture(["--minimum-interval-floor", "1", "--fetch-timeout", "2"])
        let fetch = try await library(f.bus.address)
        defer { fetch.close() }
        let remainingAtStart = Mutex<Duration?>(nil)
        let cancelledAfter = Mutex<Duration?>(nil)
        fetch.defineTask("slow") { context in
            let start = ContinuousClock.now
            remainingAtStart.withLock { $0 = context.timeRemaining }
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                cancelledAfter.withLock { $0 = ContinuousClock.now - start }
                throw error
            }
            return .newData
        }
        let done = StreamRecorder(fetch.completedFetches())
        try await fetch.registerTask("slow")
        let id = try await fetch.triggerFetch("slow")

        let completed = try #require(try await done.wait(timeout: .seconds(15)).first)
        #expect(completed.requestID == id && completed.result == .failed && completed.cancelled)
        let remaining = try #require(remainingAtStart.withLock { $0 })
        #expect(remaining <= .seconds(2) && remaining > .seconds(1))  // FetchTimeout read from the service
        let after = try #require(cancelledAfter.withLock { $0 })
        #expect(after >= .milliseconds(1500) && after < .seconds(10))
        let rows = try await eventually("the fetch in the history") {
            let rows = try history(f.client, "slow")
            return rows.last?.result == 0 ? nil : rows
        }
        #expect(rows.last?.result == 3)
    }

    // MARK: The app interface

    @Test func registrationCallsAndStatus() async throws {
        let f = try Fixture()
        let fetch = try await library(f.bus.address)
        defer { fetch.close() }
        try await fetch.registerTask("a", options: BackgroundFetchOptions(minimumInterval: .seconds(120), stopOnTerminate: false))
        try await fetch.registerTask("b")
        #expect(try await fetch.isTaskRegistered("a"))
        #expect(try await !fetch.isTaskRegistered("zzz"))

        var tasks = try await fetch.registeredTasks()
        #expect(tasks.map(\.name) == ["a", "b"])
        #expect(tasks[0].minimumInterval == .seconds(120) && tasks[0].effectiveInterval == .seconds(120))
        #expect(!tasks[0].stopOnTerminate && !tasks[0].startOnBoot)
        #expect(tasks[1].minimumInterval == .seconds(600) && tasks[1].stopOnTerminate)
        #expect(tasks[1].state == .scheduled && tasks[1].nextFetch != nil && tasks[1].lastFetch == nil)
        #expect(try await fetch.status() == .available)
        // The app's own floor raises the effective interval.
        try await fetch.setMinimumInterval(.seconds(300))
        tasks = try await fetch.registeredTasks()
        #expect(tasks[0].effectiveInterval == .seconds(300) && tasks[1].effectiveInterval == .seconds(600))

        try await fetch.unregisterTask("a")
        #expect(try await !fetch.isTaskRegistered("a"))
        try await fetch.unregisterAllTasks()
        #expect(try await fetch.registeredTasks().isEmpty)

        // The user's switch: Denied, and registering is refused.
        try f.client.call("SetAppEnabled", [.string(Self.appID), .bool(false)], interface: ServiceClient.manager)
        #expect(try await fetch.status() == .denied)
        let error = await #expect(throws: BackgroundFetchError.self) { try await fetch.registerTask("c") }
        #expect(error?.code == .denied)
    }

    /// Constraints, `adaptive` and `launch` travel in Swift types, and the
    /// info says why a task waits; a reason the library does not know keeps
    /// its raw value.
    @Test func constraintsAndReasonsInSwiftTypes() async throws {
        let system = try MockSystemBus()
        try await system.startOfflineNetworkManager()
        let bus = try TestBus()
        let daemon = try system.daemon(serving: bus)
        defer { withExtendedLifetime(daemon) {} }
        let fetch = try await library(bus.address)
        defer { fetch.close() }
        let options = BackgroundFetchOptions(
            minimumInterval: .seconds(1), constraints: [.network, .externalPower], adaptive: false, launch: .never)
        try await fetch.registerTask("sync", options: options)
        var found: BackgroundFetchTaskInfo?
        for _ in 0..<500 where found == nil {
            found = try await fetch.registeredTasks().first { $0.state == .waiting }
            if found == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let waiting = try #require(found, "the task never waited")
        #expect(waiting.reason == .network && waiting.constraints == [.network, .externalPower])
        #expect(!waiting.adaptive && waiting.launch == .never && waiting.consecutiveFailures == 0)
        #expect(BackgroundFetchTaskInfo.Reason(rawValue: "cosmic-rays").rawValue == "cosmic-rays")
        // No public type shares the module's name, so its types can be spelled in full.
        let spelled: BackgroundFetch.BackgroundFetchResult = .newData
        #expect(spelled == .newData)
    }

    @Test func errorsAreTyped() async throws {
        let f = try Fixture()
        let fetch = try await library(f.bus.address)
        defer { fetch.close() }
        var error = await #expect(throws: BackgroundFetchError.self) { try await fetch.registerTask("no spaces allowed") }
        #expect(error?.code == .invalidArgs)
        #expect(error?.dbusErrorName == "org.freedesktop.DBus.Error.InvalidArgs")
        error = await #expect(throws: BackgroundFetchError.self) {
            try await fetch.registerTask("x", options: BackgroundFetchOptions(stopOnTerminate: true, startOnBoot: true))
        }
        #expect(error?.code == .invalidArgs && error?.message.contains("startOnBoot") == true)
        error = await #expect(throws: BackgroundFetchError.self) {
            try await fetch.registerTask("x", options: BackgroundFetchOptions(minimumInterval: .seconds(700_000)))
        }
        #expect(error?.code == .invalidArgs)
        error = await #expect(throws: BackgroundFetchError.self) { try await fetch.setMinimumInterval(.zero) }
        #expect(error?.code == .invalidArgs)
        error = await #expect(throws: BackgroundFetchError.self) { try await fetch.unregisterTask("missing") }
        #expect(error?.code == .noSuchTask)
        error = await #expect(throws: BackgroundFetchError.self) { try await fetch.triggerFetch("missing") }
        #expect(error?.code == .noSuchTask)

        // Another connection owns the app id as a bus name.
        error = await #expect(throws: BackgroundFetchError.self) {
            _ = try await BackgroundFetchClient(bus: .address(f.bus.address), appID: Fixture.appID)
        }
        #expect(error?.code == .nameTaken)
    }

    @Test func serviceNotRunningAndBusUnreachable() async throws {
        let bus = try TestBus()
        let fetch = try await library(bus.address)  // the service need not run to connect
        defer { fetch.close() }
        let error = await #expect(throws: BackgroundFetchError.self) { try await fetch.registerTask("a") }
        #expect(error?.code == .serviceNotRunning)
        #expect(error?.message == "the bgfetch service is not running on the bus at \(bus.address)")

        let unreachable = await #expect(throws: BackgroundFetchError.self) {
            _ = try await BackgroundFetchClient(bus: .address("unix:path=\(bus.directory.path)/no-such-socket"))
        }
        #expect(unreachable?.code == .busUnavailable)

        // The task was kept: it is registered when the service appears.
        let daemon = try DaemonProcess(bus: bus, arguments: ["--minimum-interval-floor", "1"])
        try daemon.start()
        let panel = try ServiceClient(bus: bus, ownName: "org.example.Panel")
        defer { panel.close() }
        try await eventually("the kept task registered") {
            try panel.allTasks()[Self.appID]?["a"] != nil ? true : nil
        }
        #expect(try await fetch.isTaskRegistered("a"))
    }

    /// Closing while a call is waiting for the service ends the call with an
    /// error at once: nothing awaits for ever.
    @Test func closingDuringACallEndsTheCall() async throws {
        let bus = try TestBus()
        // A stand-in service that takes every call and never answers.
        let silent = try bus.connect()
        defer { silent.close() }
        #expect(try await silent.requestName(ServiceClient.name) == .primaryOwner)
        let (arrived, arrival) = AsyncStream<Void>.makeStream()
        silent.setMessageHandler { message in
            guard message.kind == .methodCall, message.member == "RegisterTask" else { return false }
            arrival.yield()
            return true
        }
        let fetch = try await library(bus.address)
        let call = Task { () -> BackgroundFetchError? in
            do throws(BackgroundFetchError) {
                try await fetch.registerTask("t")
                return nil
            } catch { return error }
        }
        var arrivals = arrived.makeAsyncIterator()
        await arrivals.next()  // the call is out, unanswered
        fetch.close()
        let error = await call.value
        #expect(error?.code == .busUnavailable, "\(String(describing: error))")
        // And a call after close fails at once.
        await #expect(throws: BackgroundFetchError.self) { try await fetch.registerTask("after") }
    }

    // MARK: Restarts

    @Test func reRegistersAfterDaemonRestart() async throws {
        let bus = try TestBus()
        let first = try DaemonProcess(bus: bus, arguments: ["--minimum-interval-floor", "1"])
        try first.start()
        let fetch = try await library(bus.address)
        defer { fetch.close() }
        let remaining = Mutex<Duration?>(nil)
        fetch.defineTask("sync") { context in
            remaining.withLock { $0 = context.timeRemaining }
            return .noData
        }
        let done = StreamRecorder(fetch.completedFetches())
        try await fetch.registerTask("sync", options: BackgroundFetchOptions(minimumInterval: .seconds(120)))
        try first.stop()

        // A daemon with empty state: only the library can bring the task back.
        let second = try DaemonProcess(
            bus: bus, arguments: ["--minimum-interval-floor", "1", "--fetch-timeout", "5"],
            stateDirectory: bus.directory.appendingPathComponent("state-2"))
        try second.start()
        let client = try ServiceClient(bus: bus)
        defer { client.close() }
        let info = try await eventually("the task registered again") { try client.allTasks()[Self.appID]?["sync"] }
        #expect(info["minimumInterval"] == .uint32(120))
        #expect(info["stopOnTerminate"] == .bool(true))

        // It is bound to the library's connection again: a trigger reaches the handler.
        let id = try #require(
            try client.call("TriggerTask", [.string(Self.appID), .string("sync")], interface: ServiceClient.manager).first?.uint64Value)
        let completed = try #require(try await done.wait().first)
        #expect(completed.requestID == id && completed.result == .noData && completed.acknowledged)
        // The new daemon's FetchTimeout was read again.
        let left = try #require(remaining.withLock { $0 })
        #expect(left <= .seconds(5) && left > .seconds(3))
    }

    @Test func reconnectsAfterTheBusRestarts() async throws {
        let bus = try RestartableBus()
        try bus.startDaemon()
        let fetch = try await library(bus.address)
        defer { fetch.close() }
        fetch.defineTask("sync") { _ in .newData }
        let done = StreamRecorder(fetch.completedFetches())
        try await fetch.registerTask("sync")

        bus.stopBus()
        try bus.startBus()
        // Same state: the task's connection is gone, so the daemon drops the
        // stopOnTerminate task at start. The library registers it again.
        try bus.startDaemon()
        let client = try bus.connect()
        defer { client.close() }
        func manager(_ member: String, _ arguments: [DBusValue] = []) throws -> [DBusValue] {
            try client.callBlocking(
                try Message.methodCall(
                    destination: ServiceClient.name, path: ServiceClient.path, interface: ServiceClient.manager, member: member,
                    arguments)
            ).arguments
        }
        let names = try await eventually("the task registered again", timeout: .seconds(20)) { () -> [String]? in
            let items = try manager("ListTasks").first?.arrayValue ?? []
            let names = items.compactMap { $0.structValue.flatMap { $0[0].stringValue == Self.appID ? $0[1].stringValue : nil } }
            return names.isEmpty ? nil : names
        }
        #expect(names == ["sync"])
        let id = try #require(try manager("TriggerTask", [.string(Self.appID), .string("sync")]).first?.uint64Value)
        let completed = try #require(try await done.wait().first)
        #expect(completed.requestID == id && completed.result == .newData && completed.acknowledged)
    }
}
