import CDBus
import Dispatch
import Glibc
import Synchronization

/// A private connection to a message bus, served by an ``EventLoop``.
///
/// Every libdbus call on the connection happens on the loop's thread:
/// methods called from elsewhere hand their work to it. Handlers installed
/// here run on it too, one at a time. Several connections may share one
/// loop (a daemon serving one bus and watching another); a connection made
/// without a loop gets one of its own, which closing it shuts down.
///
/// Closing drains: once closed, calls fail at once with `Disconnected`, and
/// every call still waiting for a reply completes with it.
public final class BusConnection: Sendable {
    public let loop: EventLoop
    /// The connection's unique name on the bus (`:1.42`).
    public let uniqueName: String
    private let core: LoopBound<ConnectionCore>
    private let ownsLoop: Bool
    private let closed = Atomic<Bool>(false)

    private init(loop: EventLoop, core: ConnectionCore, uniqueName: String, ownsLoop: Bool) {
        self.loop = loop
        self.core = LoopBound(core, on: loop)
        self.uniqueName = uniqueName
        self.ownsLoop = ownsLoop
    }

    /// Connects and says Hello on the calling thread (which must not be the
    /// loop's: that would stall it), then hands the connection to `loop`,
    /// or to a loop of its own named `threadName`.
    public static func connect(
        _ address: BusAddress, on loop: EventLoop? = nil, threadName: String = "dbus"
    ) throws(DBusError) -> BusConnection {
        if let loop, loop.inLoop { throw .failed("connecting blocks: connect before handing the connection to its loop") }
        let raw = try openRegistered(address)
        dbus_connection_set_exit_on_disconnect(raw, 0)
        let name = dbus_bus_get_unique_name(raw).map { String(cString: $0) } ?? ""
        let servingLoop: EventLoop
        do throws(DBusError) {
            if let loop { servingLoop = loop } else { servingLoop = try EventLoop(name: threadName) }
        } catch {
            dbus_connection_close(raw)
            dbus_connection_unref(raw)
            throw error
        }
        let core = ConnectionCore(loop: servingLoop, raw: raw)
        let connection = BusConnection(loop: servingLoop, core: core, uniqueName: name, ownsLoop: loop == nil)
        let bound = connection.core
        do throws(DBusError) {
            try servingLoop.sync { servingLoop.attach(bound.value) }
        } catch {
            dbus_connection_close(raw)
            dbus_connection_unref(raw)
            throw error
        }
        return connection
    }

    private static func openRegistered(_ address: BusAddress) throws(DBusError) -> OpaquePointer {
        var error = DBusErrorBox()
        defer { error.free() }
        switch address {
        case .session, .system:
            let type = address == .session ? DBUS_BUS_SESSION : DBUS_BUS_SYSTEM
            guard let raw = dbus_bus_get_private(type, &error.raw) else {
                throw error.swiftError(orElse: "cannot connect to \(address)")
            }
            return raw
        case .address(let text):
            guard let raw = dbus_connection_open_private(text, &error.raw) else {
                throw error.swiftError(orElse: "cannot connect to \(address)")
            }
            guard dbus_bus_register(raw, &error.raw) != 0 else {
                dbus_connection_close(raw)
                dbus_connection_unref(raw)
                throw error.swiftError(orElse: "cannot register with \(address)")
            }
            return raw
        }
    }

    deinit { close() }

    /// Flushes what is queued, fails the calls still waiting for a reply
    /// with `Disconnected`, and closes the connection (and its own loop).
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if ownsLoop {
            loop.shutdown()
        } else {
            let core = self.core
            _ = try? loop.sync { core.value.loop.detach(core.value) }
        }
    }

    public var isClosed: Bool { closed.load(ordering: .acquiring) }

    public var isConnected: Bool {
        let core = self.core
        return (try? loop.sync { () throws(DBusError) -> Bool in
            guard let raw = core.value.raw else { return false }
            return dbus_connection_get_is_connected(raw) != 0
        }) ?? false
    }

    // MARK: Handlers

    /// Every incoming message but replies to our own calls goes to `handler`
    /// on the loop's thread; it returns whether it handled the message. An
    /// unhandled method call gets libdbus's `UnknownMethod` reply.
    public func setMessageHandler(_ handler: @escaping @Sendable (Message) -> Bool) {
        perform { core in core.messageHandler = handler }
    }

    /// Runs on the loop's thread when the bus goes away.
    public func setDisconnectHandler(_ handler: @escaping @Sendable () -> Void) {
        perform { core in core.disconnectHandler = handler }
    }

    /// Runs `body` with the connection on the loop's thread, now if called
    /// there; returns false, running nothing, once the loop has stopped.
    @discardableResult
    private func perform(_ body: @escaping @Sendable (ConnectionCore) -> Void) -> Bool {
        let core = self.core
        if loop.inLoop {
            body(core.value)
            return true
        }
        return loop.execute { body(core.value) }
    }

    // MARK: Sending

    /// Queues `message`; the loop writes it out. Returns false when the
    /// connection is closed or out of memory.
    @discardableResult
    public func send(_ message: Message) -> Bool {
        guard !isClosed else { return false }
        let core = self.core
        if loop.inLoop { return core.value.send(message) }
        return loop.execute { _ = core.value.send(message) }
    }

    /// Sends a method call; `completion` runs once, on the loop's thread,
    /// with the reply or the error the peer or libdbus gave, or at once on
    /// the calling thread with `Disconnected` when the connection is closed.
    public func call(
        _ message: Message, timeoutMilliseconds: Int32 = -1,
        completion: @escaping @Sendable (Result<Message, DBusError>) -> Void
    ) {
        guard !isClosed, perform({ $0.call(message, timeoutMilliseconds: timeoutMilliseconds, completion: completion) })
        else { return completion(.failure(.closed)) }
    }

    /// Sends a method call and awaits its reply. It runs on the caller's
    /// actor (`isolation`), so an actor on the loop never leaves the loop.
    public func call(
        _ message: Message, timeoutMilliseconds: Int32 = -1, isolation: isolated (any Actor)? = #isolation
    ) async throws(DBusError) -> Message {
        let result = await withCheckedContinuation(isolation: isolation) {
            (continuation: CheckedContinuation<Result<Message, DBusError>, Never>) in
            call(message, timeoutMilliseconds: timeoutMilliseconds) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Sends every call in `messages` at once and awaits all the replies,
    /// in the same order: many questions cost one wait, not one each.
    public func callEach(
        _ messages: [Message], timeoutMilliseconds: Int32 = 25_000, isolation: isolated (any Actor)? = #isolation
    ) async -> [Result<Message, DBusError>] {
        guard !messages.isEmpty else { return [] }
        let replies = Mutex<[Result<Message, DBusError>?]>(Array(repeating: nil, count: messages.count))
        let left = Atomic<Int>(messages.count)
        await withCheckedContinuation(isolation: isolation) { (continuation: CheckedContinuation<Void, Never>) in
            for (index, message) in messages.enumerated() {
                call(message, timeoutMilliseconds: timeoutMilliseconds) { result in
                    replies.withLock { $0[index] = result }
                    if left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { continuation.resume() }
                }
            }
        }
        return replies.withLock { $0.map { $0! } }
    }

    /// Sends a method call and blocks the calling thread until the reply.
    /// Refused on the loop's thread, which it would stall.
    public func callBlocking(_ message: Message, timeoutMilliseconds: Int32 = 25_000) throws(DBusError) -> Message {
        guard !loop.inLoop else { throw .failed("a blocking call on the event loop's own thread would stall it") }
        let result = Mutex<Result<Message, DBusError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        call(message, timeoutMilliseconds: timeoutMilliseconds) { outcome in
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    // MARK: The bus driver

    /// Calls a method of `org.freedesktop.DBus`, blocking, and returns its arguments.
    public func callBus(_ member: String, _ arguments: [DBusValue] = []) throws(DBusError) -> [DBusValue] {
        try callBlocking(try Message.busDriverCall(member, arguments)).arguments
    }

    /// Calls a method of `org.freedesktop.DBus` and awaits its arguments.
    public func callBus(
        _ member: String, _ arguments: [DBusValue] = [], timeoutMilliseconds: Int32 = 25_000,
        isolation: isolated (any Actor)? = #isolation
    ) async throws(DBusError) -> [DBusValue] {
        try await call(try Message.busDriverCall(member, arguments), timeoutMilliseconds: timeoutMilliseconds).arguments
    }

    /// Calls one method of `org.freedesktop.DBus` once for each argument
    /// list, all at once, and awaits every answer, in order.
    public func callBusEach(
        _ member: String, _ argumentLists: [[DBusValue]], isolation: isolated (any Actor)? = #isolation
    ) async -> [Result<[DBusValue], DBusError>] {
        var messages: [Message] = []
        for arguments in argumentLists {
            do throws(DBusError) {
                messages.append(try Message.busDriverCall(member, arguments))
            } catch {
                return argumentLists.map { _ in .failure(error) }
            }
        }
        return await callEach(messages).map { $0.map(\.arguments) }
    }

    /// Calls a method of `org.freedesktop.DBus` without blocking;
    /// `completion` runs on the loop's thread with its arguments.
    public func callBus(
        _ member: String, _ arguments: [DBusValue] = [], timeoutMilliseconds: Int32 = 25_000,
        completion: @escaping @Sendable (Result<[DBusValue], DBusError>) -> Void
    ) {
        do throws(DBusError) {
            call(try Message.busDriverCall(member, arguments), timeoutMilliseconds: timeoutMilliseconds) {
                completion($0.map(\.arguments))
            }
        } catch {
            completion(.failure(error))
        }
    }

    public enum NameRequestResult: Sendable, Equatable {
        case primaryOwner, inQueue, exists, alreadyOwner

        init(_ reply: [DBusValue]) {
            switch reply.first?.uint32Value {
            case UInt32(DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER): self = .primaryOwner
            case UInt32(DBUS_REQUEST_NAME_REPLY_IN_QUEUE): self = .inQueue
            case UInt32(DBUS_REQUEST_NAME_REPLY_ALREADY_OWNER): self = .alreadyOwner
            default: self = .exists
            }
        }
    }

    private static func requestNameArguments(_ name: String) -> [DBusValue] {
        [.string(name), .uint32(UInt32(DBUS_NAME_FLAG_DO_NOT_QUEUE))]
    }

    /// Requests a well-known name without queueing or replacing (blocking).
    public func requestName(_ name: String) throws(DBusError) -> NameRequestResult {
        NameRequestResult(try callBus("RequestName", Self.requestNameArguments(name)))
    }

    /// Requests a well-known name without queueing or replacing.
    public func requestName(_ name: String, isolation: isolated (any Actor)? = #isolation) async throws(DBusError)
        -> NameRequestResult
    {
        NameRequestResult(try await callBus("RequestName", Self.requestNameArguments(name)))
    }

    public func addMatch(_ rule: String) throws(DBusError) {
        _ = try callBus("AddMatch", [.string(rule)])
    }

    public func addMatch(_ rule: String, isolation: isolated (any Actor)? = #isolation) async throws(DBusError) {
        _ = try await callBus("AddMatch", [.string(rule)])
    }

    public func removeMatch(_ rule: String) throws(DBusError) {
        _ = try callBus("RemoveMatch", [.string(rule)])
    }
}

/// A value that lives on a loop's thread, handed around by other threads
/// only to be used back on it.
///
/// `@unchecked Sendable`: ``value`` checks at run time that it is read on the loop's thread.
struct LoopBound<Value: AnyObject>: @unchecked Sendable {
    private let wrapped: Value
    private let loop: EventLoop

    init(_ value: Value, on loop: EventLoop) {
        wrapped = value
        self.loop = loop
    }

    var value: Value {
        loop.preconditionInLoop()
        return wrapped
    }
}

/// libdbus's `DBusError`, initialised and freed.
struct DBusErrorBox {
    var raw = CDBus.DBusError()

    init() { dbus_error_init(&raw) }

    mutating func free() { dbus_error_free(&raw) }

    func swiftError(orElse fallback: String) -> DBusError {
        guard let name = raw.name else { return .failed(fallback) }
        let message = raw.message.map { String(cString: $0) } ?? fallback
        return DBusError(String(cString: name), message)
    }
}
