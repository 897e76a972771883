import Foundation
import Logging
import Testing

@testable import BackgroundFetchCore
import TestKit

// Shared fixtures for the engine and store tests. Time only moves through
// `ManualClock.advance`; nothing here sleeps.

let mailApp = AppKey(uid: 1000, appID: "org.example.Mail")
let newsApp = AppKey(uid: 1000, appID: "org.example.News")
let otherUserApp = AppKey(uid: 1001, appID: "org.example.Mail")

let mail = Caller(app: mailApp, connection: ":1.10")
let mailSecond = Caller(app: mailApp, connection: ":1.11")
let news = Caller(app: newsApp, connection: ":1.20")
let otherUser = Caller(app: otherUserApp, connection: ":1.30")

/// Seconds as the engine's microseconds.
func secs(_ seconds: Int64) -> Int64 { seconds * 1_000_000 }

let quietLogger: Logger = {
    var logger = Logger(label: "bgfetch.tests")
    logger.logLevel = .critical
    return logger
}()

/// Collects what the engine asks its host to send.
final class EventLog {
    private(set) var all: [EngineEvent] = []

    func append(_ event: EngineEvent) { all.append(event) }

    /// The events since the last call.
    func take() -> [EngineEvent] {
        defer { all.removeAll() }
        return all
    }
}

/// An engine on a manual clock with its events collected.
final class EngineHarness {
    let clock: ManualClock
    let store: TaskStore
    let engine: FetchEngine
    let events = EventLog()
    /// When the harness was made: every test's time zero.
    let start: Int64

    init(
        config: DaemonConfig = DaemonConfig(), store: TaskStore = MemoryTaskStore(), clock: ManualClock = ManualClock(),
        bootID: String = "boot-1", isStillConnected: (String, AppKey) -> Bool = { _, _ in true },
        isActivatable: @escaping (AppKey) -> Bool = { _ in false }
    ) throws {
        self.clock = clock
        self.store = store
        start = clock.now()
        engine = FetchEngine(config: config, store: store, clock: clock, logger: quietLogger)
        let log = events
        engine.onEvent = { log.append($0) }
        engine.isActivatable = isActivatable
        try engine.restore(bootID: bootID, isStillConnected: isStillConnected)
    }

    var memoryStore: MemoryTaskStore {
        get throws { try #require(store as? MemoryTaskStore) }
    }

    var now: Int64 { clock.now() }

    /// Moves the clock forward (never back) to `time`, a whole number of seconds away.
    func advance(to time: Int64) {
        let delta = time - clock.now()
        precondition(delta >= 0 && delta % 1_000_000 == 0, "advance(to:) moves forward by whole seconds")
        clock.advance(bySeconds: Double(delta / 1_000_000))
    }

    func advance(seconds: Int64) { clock.advance(bySeconds: Double(seconds)) }

    /// Runs the timer: moves to the next deadline and fires what is due.
    @discardableResult
    func runTimer() throws -> [EngineEvent] {
        let deadline = try #require(engine.nextDeadline(), "nothing is scheduled")
        if deadline > clock.now() { advance(to: deadline) }
        try engine.fireDue()
        return events.take()
    }

    func info(_ caller: Caller, _ name: String) throws -> TaskInfo {
        try #require(engine.tasks(of: caller.app).first { $0.key.name == name }, "no task \(name)")
    }

    func info(_ app: AppKey, _ name: String) throws -> TaskInfo {
        try #require(engine.tasks(of: app).first { $0.key.name == name }, "no task \(name)")
    }
}

func key(_ caller: Caller, _ name: String) -> TaskKey { TaskKey(app: caller.app, name: name) }
func key(_ app: AppKey, _ name: String) -> TaskKey { TaskKey(app: app, name: name) }

/// The request ids of the `fetchRequested` events, in order.
func requestedIDs(_ events: [EngineEvent]) -> [UInt64] {
    events.compactMap {
        if case .fetchRequested(_, _, let id) = $0 { return id }
        return nil
    }
}

/// The single `fetchRequested` in `events`, or a test failure.
func singleRequest(_ events: [EngineEvent], sourceLocation: SourceLocation = #_sourceLocation) throws -> (
    destination: String, task: TaskKey, requestID: UInt64
) {
    try #require(events.count == 1, "expected one event, got \(events)", sourceLocation: sourceLocation)
    guard case .fetchRequested(let destination, let task, let id) = events[0] else {
        Issue.record("expected fetchRequested, got \(events[0])", sourceLocation: sourceLocation)
        throw FetchError(.failed, "unexpected event")
    }
    return (destination, task, id)
}

/// A throwaway directory, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("bgfetch-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path) }
}

/// Asserts `body` throws a `FetchError` of `kind` and returns it.
@discardableResult
func expectFetchError<R>(
    _ kind: FetchError.Kind, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(FetchError) -> R
) -> FetchError? {
    do {
        _ = try body()
        Issue.record("expected FetchError .\(kind), nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.kind == kind, "\(error.message)", sourceLocation: sourceLocation)
        return error
    }
}
