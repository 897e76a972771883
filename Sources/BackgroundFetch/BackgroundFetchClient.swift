import DBus
import Synchronization

/// The app's side of bgfetch: define what a fetch does, register tasks, and
/// answer the service's fetches — Expo's `BackgroundFetch` and
/// `TaskManager.defineTask` for Swift on Linux.
///
/// ```swift
/// let fetch = try await BackgroundFetchClient()                  // the session bus
/// fetch.defineTask("refresh") { context in
///     try await refreshInbox()                             // cancelled at the deadline
///     return .newData
/// }
/// try await fetch.registerTask("refresh", options: .init(minimumInterval: .seconds(900)))
/// ```
///
/// Keep the object for as long as the app wants fetches: it owns a private bus
/// connection (served by its own thread, so it needs no run loop from the app)
/// and closing it — or letting it go — leaves the bus, which unregisters the
/// `stopOnTerminate` tasks.
///
/// **Why a final class with a lock, not an actor.** The service's signals
/// arrive on the connection's thread, in order, and must be acted on in that
/// order: a `FetchExpired` has to find the handler task its `FetchRequested`
/// started. Hopping onto an actor would mean one unstructured `Task` per
/// signal, and those may run in any order. So the state sits behind a
/// `Mutex`, taken briefly and never across an `await`; handlers run in their
/// own tasks, outside it.
///
/// **What it does for you.**
/// - On `FetchRequested` it runs the task's handler in a new `Task` with a
///   ``FetchContext`` whose deadline is the arrival plus the service's
///   `FetchTimeout`; it cancels that task when the deadline passes or the
///   service sends `FetchExpired`; then it answers `FinishFetch` with the
///   handler's result, or `.failed` if the handler threw or was cancelled (no
///   answer after `FetchExpired`: the service has counted it already). A fetch
///   for a task with no handler defined is answered `.failed` at once.
/// - It follows `NameOwnerChanged` for `org.bgfetch.BackgroundFetch1`: when the
///   service (re)appears it reads `FetchTimeout` again and re-registers every
///   task this object registered, with the same options, which binds them to
///   this connection again (re-registering keeps their schedule).
/// - When the bus connection drops it reconnects with backoff (0.1 s doubling
///   to 30 s), takes ``appID`` again and re-registers the same way.
///
/// **What it does not do.** It does not persist anything: a new process must
/// define and register its tasks again (Expo apps do the same at start). Tasks
/// registered by another process or with another tool are not re-registered.
/// Calls made while the connection is down fail with
/// ``BackgroundFetchError/Code/busUnavailable`` rather than wait. A
/// re-registration the service refuses (the user disabled the app meanwhile)
/// is dropped silently; the task stays remembered and is tried again the next
/// time the service appears. A call that races the service's restart (say
/// `unregisterTask` while re-registration runs) may be undone by it.
///
/// **Threads and main loops.** Nothing here needs the caller's run loop:
/// handlers run on Swift's concurrency pool. An app with a GLib or other main
/// loop calls the async methods from a `Task` and hops back to its loop
/// itself when a handler must touch UI state.
public final class BackgroundFetchClient: Sendable {
    /// What a task does when the service asks for a fetch.
    public typealias Handler = @Sendable (FetchContext) async throws -> BackgroundFetchResult

    /// The bus this object talks to the service on.
    public let bus: Bus
    /// The app id asked for as a well-known bus name on the connection, if any.
    public let appID: String?
    /// Whether this object answers `org.freedesktop.Application` for ``appID``.
    public let answersDesktopActivation: Bool

    let state = Mutex(State())

    struct State {
        var connection: BusConnection?
        /// Counts connections, so handlers of an old one do nothing.
        var generation: UInt64 = 0
        var reconnecting = false
        var closed = false
        /// The unique name that owns the service's name, when it runs.
        var serviceOwner: String?
        var fetchTimeout: Duration?
        var handlers: [String: Handler] = [:]
        /// What this object registered, to register again after a restart.
        var registered: [String: BackgroundFetchOptions] = [:]
        var running: [UInt64: RunningFetch] = [:]
        var observers: [UInt64: AsyncStream<CompletedFetch>.Continuation] = [:]
        var nextObserverID: UInt64 = 0
    }

    struct RunningFetch {
        let work: Task<BackgroundFetchResult, any Error>
        var expired = false
        var timedOut = false
    }

    /// Connects to `bus` and starts following the service.
    ///
    /// - Parameters:
    ///   - bus: where the service is; the session bus by default.
    ///   - appID: a well-known bus name to own on the connection. The service
    ///     takes it as the app id unless the process is a Flatpak or runs in an
    ///     `app-….scope`/`.service` systemd unit (then those name the app);
    ///     without one, a plain program is known by its executable's name.
    ///   - answerDesktopActivation: serve `org.freedesktop.Application` for
    ///     `appID` on this connection, so that an app the service starts the
    ///     desktop way (a `DBusActivatable=true` desktop entry: the service
    ///     calls `ActivateAction("background-fetch", [<(task, id)>], {})`)
    ///     has its fetch run by the handler defined for the task, like a
    ///     `FetchRequested`. Define handlers with the static
    ///     ``defineTask(_:handler:)-swift.type.method`` before this init: the
    ///     call may arrive as soon as the name is taken. Leave it off in a
    ///     process whose GApplication owns the app id (the bus gives the call
    ///     to the name's owner, and the GApplication has its own action).
    /// - Throws: ``BackgroundFetchError/Code/busUnavailable`` if the bus cannot
    ///   be reached, ``BackgroundFetchError/Code/nameTaken`` if `appID` is owned
    ///   by someone else. The service need not be running yet.
    public init(bus: Bus = .session, appID: String? = nil, answerDesktopActivation: Bool = false)
        async throws(BackgroundFetchError)
    {
        self.bus = bus
        self.appID = appID
        answersDesktopActivation = answerDesktopActivation && appID != nil
        let connection = try ServiceCall.connect(bus, threadName: "bgfetch-client")
        do throws(BackgroundFetchError) {
            try await attach(connection)
        } catch {
            close()
            connection.close()
            throw error
        }
    }

    deinit { close() }

    /// Leaves the bus: running handlers are cancelled, ``completedFetches()``
    /// streams end, and the service unregisters the `stopOnTerminate` tasks.
    public func close() {
        let (connection, running, observers) = state.withLock { state in
            state.closed = true
            defer {
                state.connection = nil
                state.running = [:]
                state.observers = [:]
            }
            return (state.connection, state.running.values.map(\.work), Array(state.observers.values))
        }
        for work in running { work.cancel() }
        for observer in observers { observer.finish() }
        connection?.close()
    }

    // MARK: Handlers

    /// Defines what a fetch of `name` does, replacing an earlier definition.
    /// Define tasks before registering them: a fetch for a task with no
    /// handler is answered `.failed`.
    public func defineTask(_ name: String, handler: @escaping Handler) {
        state.withLock { $0.handlers[name] = handler }
    }

    /// Defines what a fetch of `name` does for every `BackgroundFetchClient` of the
    /// process, like Expo's `TaskManager.defineTask`: call it at start-up,
    /// before any object exists. A definition on an object wins over this one.
    public static func defineTask(_ name: String, handler: @escaping Handler) {
        processHandlers.withLock { $0[name] = handler }
    }

    /// The handlers defined with ``defineTask(_:handler:)-swift.type.method``.
    static let processHandlers = Mutex<[String: Handler]>([:])

    /// The fetches this object answers from now on, one element each, until
    /// ``close()``. Each call gives a new stream; it keeps the newest 256
    /// elements its reader has not taken yet.
    public func completedFetches() -> AsyncStream<CompletedFetch> {
        let (stream, continuation) = AsyncStream.makeStream(of: CompletedFetch.self, bufferingPolicy: .bufferingNewest(256))
        let id = state.withLock { state -> UInt64? in
            guard !state.closed else { return nil }
            state.nextObserverID += 1
            state.observers[state.nextObserverID] = continuation
            return state.nextObserverID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.observers.removeValue(forKey: id) }
        }
        return stream
    }

    // MARK: The app interface

    /// Registers `name` (or re-registers it with new options), bound to this
    /// connection. The object remembers it to register it again after a
    /// service or bus restart.
    ///
    /// When the service is not running the call throws `serviceNotRunning`
    /// **and keeps the task**: it is registered as soon as the service
    /// appears on the bus (as after a restart), so an app started before the
    /// service loses nothing.
    ///
    /// - Throws: `invalidArgs` (a bad name or options), `denied`,
    ///   `restricted`, `limitExceeded`, `failed`, `serviceNotRunning`, `busUnavailable`.
    public func registerTask(_ name: String, options: BackgroundFetchOptions = BackgroundFetchOptions())
        async throws(BackgroundFetchError)
    {
        do throws(BackgroundFetchError) {
            _ = try await callService("RegisterTask", [.string(name), options.dbusValue])
        } catch {
            if error.code == .serviceNotRunning {
                state.withLock { $0.registered[name] = options }
                // The service may have appeared while we asked, after its
                // re-registration pass read the list: register now if so.
                if state.withLock({ $0.serviceOwner }) != nil,
                    (try? await callService("RegisterTask", [.string(name), options.dbusValue])) != nil
                {
                    return
                }
            }
            throw error
        }
        state.withLock { $0.registered[name] = options }
    }

    /// Unregisters `name`. Throws `noSuchTask` if the app has no such task.
    public func unregisterTask(_ name: String) async throws(BackgroundFetchError) {
        do throws(BackgroundFetchError) {
            _ = try await callService("UnregisterTask", [.string(name)])
        } catch {
            // The service has no such task, or is not running: either way it is
            // not to be registered again when the service appears.
            if error.code == .noSuchTask || error.code == .serviceNotRunning {
                state.withLock { _ = $0.registered.removeValue(forKey: name) }
            }
            throw error
        }
        state.withLock { _ = $0.registered.removeValue(forKey: name) }
    }

    /// Unregisters every task of the app, including those other processes of
    /// the same app registered.
    public func unregisterAllTasks() async throws(BackgroundFetchError) {
        do throws(BackgroundFetchError) {
            _ = try await callService("UnregisterAllTasks")
        } catch {
            if error.code == .serviceNotRunning { state.withLock { $0.registered.removeAll() } }
            throw error
        }
        state.withLock { $0.registered.removeAll() }
    }

    /// Whether the app has a task by that name.
    public func isTaskRegistered(_ name: String) async throws(BackgroundFetchError) -> Bool {
        guard let registered = try await callService("IsTaskRegistered", [.string(name)]).first?.boolValue else {
            throw .badReply("IsTaskRegistered")
        }
        return registered
    }

    /// The app's tasks as the service has them, sorted by name.
    public func registeredTasks() async throws(BackgroundFetchError) -> [BackgroundFetchTaskInfo] {
        try BackgroundFetchTaskInfo.list(from: try await callService("GetRegisteredTasks"))
    }

    /// Whether the app may fetch in the background.
    public func status() async throws(BackgroundFetchError) -> BackgroundFetchStatus {
        guard let raw = try await callService("GetStatus").first?.uint32Value,
            let status = BackgroundFetchStatus(rawValue: raw)
        else { throw .badReply("GetStatus") }
        return status
    }

    /// An app-wide floor on the interval of the app's tasks (whole seconds,
    /// rounded up; 1 s to 7 days), kept by the service.
    public func setMinimumInterval(_ interval: Duration) async throws(BackgroundFetchError) {
        _ = try await callService("SetMinimumInterval", [.uint32(BackgroundFetchOptions.wholeSeconds(interval))])
    }

    /// Fires `name` now, outside its schedule, and returns the request id —
    /// for trying a handler out. The fetch comes back to this object like any
    /// other. Throws `noSuchTask`, `denied`, `restricted`.
    @discardableResult
    public func triggerFetch(_ name: String) async throws(BackgroundFetchError) -> UInt64 {
        guard let id = try await callService("TriggerFetch", [.string(name)]).first?.uint64Value else {
            throw .badReply("TriggerFetch")
        }
        return id
    }

    /// Calls a method of the app interface on the current connection.
    func callService(_ member: String, _ arguments: [DBusValue] = []) async throws(BackgroundFetchError) -> [DBusValue] {
        guard let connection = state.withLock({ $0.connection }) else { throw .notConnected(bus) }
        return try await ServiceCall.call(connection, on: bus, member, arguments)
    }
}
