import CDBus
import Glibc
import Synchronization

/// A private connection to a message bus, served by its own thread.
///
/// Every libdbus call on the connection happens on that one thread: methods
/// called from elsewhere post their work to it. Handlers installed here run on
/// it too, one at a time, so the state they touch needs no locks.
public final class BusConnection: @unchecked Sendable {
    private let loop: EventLoop
    /// The connection's unique name on the bus (`:1.42`).
    public let uniqueName: String
    private let closed = Atomic<Bool>(false)

    private init(loop: EventLoop, uniqueName: String) {
        self.loop = loop
        self.uniqueName = uniqueName
    }

    /// Connects, says Hello, and starts the connection's thread.
    public static func connect(_ address: BusAddress, threadName: String = "dbus") throws(DBusError) -> BusConnection {
        let raw = try openRegistered(address)
        dbus_connection_set_exit_on_disconnect(raw, 0)
        let name = dbus_bus_get_unique_name(raw).map { String(cString: $0) } ?? ""
        let loop = try EventLoop()
        loop.install(on: raw)
        loop.start(name: threadName)
        return BusConnection(loop: loop, uniqueName: name)
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

    /// Flushes what is queued, closes the connection and ends its thread.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.stop()
    }

    public var isConnected: Bool {
        (try? loop.sync { () throws(DBusError) -> Bool in
            guard let raw = self.loop.connection else { return false }
            return dbus_connection_get_is_connected(raw) != 0
        }) ?? false
    }

    /// True when called on the connection's own thread.
    public var isOnConnectionThread: Bool { loop.isOnLoopThread }

    // MARK: Handlers

    /// Every incoming message but replies to our own calls goes to `handler`
    /// on the connection's thread; it returns whether it handled the message.
    /// An unhandled method call gets libdbus's `UnknownMethod` reply.
    public func setMessageHandler(_ handler: @escaping @Sendable (Message) -> Bool) {
        loop.post { self.loop.messageHandler = handler }
    }

    /// Runs on the connection's thread each time it has dispatched all it had
    /// and is about to wait. Returning true means it has work left: the
    /// connection then reads what came meanwhile, without waiting, and calls
    /// it again.
    public func setIdleHandler(_ handler: @escaping @Sendable () -> Bool) {
        loop.post { self.loop.idleHandler = handler }
    }

    /// Runs on the connection's thread when the bus goes away.
    public func setDisconnectHandler(_ handler: @escaping @Sendable () -> Void) {
        loop.post { self.loop.disconnectHandler = handler }
    }

    /// Runs `body` on the connection's thread.
    public func perform(_ body: @escaping @Sendable () -> Void) {
        if loop.isOnLoopThread { body() } else { loop.post(body) }
    }

    /// A timer whose handler runs on the connection's thread.
    public func makeTimer(_ handler: @escaping @Sendable () -> Void) throws(DBusError) -> LoopTimer {
        let timer = try LoopTimer(loop: loop, handler: handler)
        loop.post { self.loop.add(timer) }
        return timer
    }

    // MARK: Sending

    /// Queues `message`; the loop writes it out. Returns false when the
    /// connection is closed or out of memory.
    @discardableResult
    public func send(_ message: Message) -> Bool {
        if loop.isOnLoopThread { return sendOnLoop(message) }
        loop.post { _ = self.sendOnLoop(message) }
        return !closed.load(ordering: .acquiring)
    }

    private func sendOnLoop(_ message: Message) -> Bool {
        guard let raw = loop.connection else { return false }
        return dbus_connection_send(raw, message.raw, nil) != 0
    }

    /// Sends a method call; `completion` runs on the connection's thread with
    /// the reply, or with the error the peer or libdbus gave.
    public func call(
        _ message: Message, timeoutMilliseconds: Int32 = -1,
        completion: @escaping @Sendable (Result<Message, DBusError>) -> Void
    ) {
        perform {
            guard let raw = self.loop.connection else {
                completion(.failure(DBusError(DBusError.Name.disconnected, "the connection is closed")))
                return
            }
            var pending: OpaquePointer? = nil
            guard dbus_connection_send_with_reply(raw, message.raw, &pending, timeoutMilliseconds) != 0 else {
                completion(.failure(DBusError(DBusError.Name.noMemory, "out of memory")))
                return
            }
            guard let pending else {
                completion(.failure(DBusError(DBusError.Name.disconnected, "the connection is closed")))
                return
            }
            let box = Unmanaged.passRetained(CompletionBox(completion)).toOpaque()
            dbus_pending_call_set_notify(
                pending,
                { pending, data in
                    let box = Unmanaged<CompletionBox>.fromOpaque(data!).takeUnretainedValue()
                    guard let pending, let reply = dbus_pending_call_steal_reply(pending) else {
                        box.completion(.failure(DBusError(DBusError.Name.noReply, "no reply")))
                        return
                    }
                    let message = Message(owning: reply)
                    if let error = message.error {
                        box.completion(.failure(error))
                    } else {
                        box.completion(.success(message))
                    }
                },
                box,
                { data in Unmanaged<CompletionBox>.fromOpaque(data!).release() })
            dbus_pending_call_unref(pending)
        }
    }

    /// Sends a method call and awaits its reply.
    public func call(_ message: Message, timeoutMilliseconds: Int32 = -1) async throws(DBusError) -> Message {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Message, DBusError>, Never>) in
            call(message, timeoutMilliseconds: timeoutMilliseconds) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Sends a method call and blocks the calling thread until the reply.
    ///
    /// On the connection's own thread this uses libdbus's blocking call, which
    /// queues other incoming messages meanwhile; keep it for calls to the bus
    /// itself, which answers at once.
    public func callBlocking(_ message: Message, timeoutMilliseconds: Int32 = 25_000) throws(DBusError) -> Message {
        try loop.sync { () throws(DBusError) -> Message in
            guard let raw = self.loop.connection else {
                throw DBusError(DBusError.Name.disconnected, "the connection is closed")
            }
            var error = DBusErrorBox()
            defer { error.free() }
            guard let reply = dbus_connection_send_with_reply_and_block(raw, message.raw, timeoutMilliseconds, &error.raw)
            else { throw error.swiftError(orElse: "call failed") }
            return Message(owning: reply)
        }
    }

    // MARK: The bus driver

    /// Calls a method of `org.freedesktop.DBus`, blocking, and returns its arguments.
    public func callBus(_ member: String, _ arguments: [DBusValue] = []) throws(DBusError) -> [DBusValue] {
        try callBlocking(try Message.busDriverCall(member, arguments)).arguments
    }

    /// Calls a method of `org.freedesktop.DBus` without blocking;
    /// `completion` runs on the connection's thread with its arguments.
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

    public enum NameRequestResult: Sendable, Equatable { case primaryOwner, inQueue, exists, alreadyOwner }

    /// Requests a well-known name without queueing or replacing.
    public func requestName(_ name: String) throws(DBusError) -> NameRequestResult {
        let flags = UInt32(DBUS_NAME_FLAG_DO_NOT_QUEUE)
        let reply = try callBus("RequestName", [.string(name), .uint32(flags)])
        switch reply.first?.uint32Value {
        case UInt32(DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER): return .primaryOwner
        case UInt32(DBUS_REQUEST_NAME_REPLY_IN_QUEUE): return .inQueue
        case UInt32(DBUS_REQUEST_NAME_REPLY_ALREADY_OWNER): return .alreadyOwner
        default: return .exists
        }
    }

    public func addMatch(_ rule: String) throws(DBusError) {
        _ = try callBus("AddMatch", [.string(rule)])
    }

    public func removeMatch(_ rule: String) throws(DBusError) {
        _ = try callBus("RemoveMatch", [.string(rule)])
    }
}

private final class CompletionBox {
    let completion: @Sendable (Result<Message, DBusError>) -> Void
    init(_ completion: @escaping @Sendable (Result<Message, DBusError>) -> Void) { self.completion = completion }
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
