import CDBus

/// One libdbus connection as its loop serves it: the raw pointer, libdbus's
/// watches and timeouts, the handlers, and the calls still waiting for a
/// reply. Everything here is touched on the loop's thread only.
final class ConnectionCore {
    unowned let loop: EventLoop
    private(set) var raw: OpaquePointer?
    var watches: [OpaquePointer] = []
    var timeouts: [OpaquePointer: UInt64] = [:]
    var messageHandler: (@Sendable (Message) -> Bool)?
    var disconnectHandler: (@Sendable () -> Void)?
    /// Calls sent and not yet answered, so that closing can fail each one.
    private var pending: [OpaquePointer: PendingReply] = [:]

    init(loop: EventLoop, raw: OpaquePointer) {
        self.loop = loop
        self.raw = raw
    }

    var isOpen: Bool { raw != nil }

    // MARK: Calls

    func send(_ message: Message) -> Bool {
        guard let raw else { return false }
        return dbus_connection_send(raw, message.raw, nil) != 0
    }

    /// Sends a method call; `completion` runs on the loop's thread exactly
    /// once: with the reply, the error the peer or libdbus gave, or
    /// `Disconnected` when the connection closes first.
    func call(_ message: Message, timeoutMilliseconds: Int32, completion: @escaping @Sendable (Result<Message, DBusError>) -> Void) {
        guard let raw else { return completion(.failure(.closed)) }
        var call: OpaquePointer? = nil
        guard dbus_connection_send_with_reply(raw, message.raw, &call, timeoutMilliseconds) != 0 else {
            return completion(.failure(DBusError(DBusError.Name.noMemory, "out of memory")))
        }
        guard let call else { return completion(.failure(.closed)) }
        let reply = PendingReply(completion)
        pending[call] = reply
        let box = Unmanaged.passRetained(NotifyBox(core: self)).toOpaque()
        dbus_pending_call_set_notify(
            call,
            { call, data in
                guard let call else { return }
                Unmanaged<NotifyBox>.fromOpaque(data!).takeUnretainedValue().core.replied(call)
            },
            box,
            { data in Unmanaged<NotifyBox>.fromOpaque(data!).release() })
        // A reply that came before the notify was set: complete it now.
        if dbus_pending_call_get_completed(call) != 0 { replied(call) }
    }

    private func replied(_ call: OpaquePointer) {
        guard let reply = pending.removeValue(forKey: call) else { return }
        defer { dbus_pending_call_unref(call) }
        guard let raw = dbus_pending_call_steal_reply(call) else {
            return reply.complete(.failure(DBusError(DBusError.Name.noReply, "no reply")))
        }
        let message = Message(owning: raw, received: true)
        reply.complete(message.error.map { .failure($0) } ?? .success(message))
    }

    // MARK: Closing

    /// Writes out what is queued, fails every call still waiting for a
    /// reply with `Disconnected`, and releases the connection.
    func close() {
        guard let raw else { return }
        dbus_connection_flush(raw)
        failPending()
        dbus_connection_close(raw)
        dbus_connection_unref(raw)
        self.raw = nil
        watches.removeAll()
        timeouts.removeAll()
        messageHandler = nil
        disconnectHandler = nil
    }

    /// The peer went away: calls that libdbus has not failed yet fail now.
    func failPending() {
        let waiting = pending
        pending.removeAll()
        for (call, reply) in waiting {
            dbus_pending_call_cancel(call)
            dbus_pending_call_unref(call)
            reply.complete(.failure(.closed))
        }
    }

    // MARK: Dispatch

    var hasMessagesQueued: Bool {
        guard let raw else { return false }
        return dbus_connection_get_dispatch_status(raw) == DBUS_DISPATCH_DATA_REMAINS
    }

    /// Dispatches one message; the caller has seen ``hasMessagesQueued``.
    func dispatchOne() {
        guard let raw else { return }
        dbus_connection_dispatch(raw)
    }

    fileprivate func filter(_ message: Message) -> Bool {
        if message.kind == .signal, message.interface == "org.freedesktop.DBus.Local", message.member == "Disconnected" {
            failPending()
            disconnectHandler?()
            return true
        }
        return messageHandler?(message) ?? false
    }

    // MARK: libdbus's main-loop contract

    /// Hands libdbus the functions through which it tells the loop what to
    /// watch, when to time out and when to wake up.
    func install() {
        guard let raw else { return }
        let me = Unmanaged.passUnretained(self).toOpaque()
        dbus_connection_set_watch_functions(
            raw,
            { watch, data in
                ConnectionCore.from(data).watches.append(watch!)
                return 1
            },
            { watch, data in ConnectionCore.from(data).watches.removeAll { $0 == watch } },
            { _, _ in },
            me, nil)
        dbus_connection_set_timeout_functions(
            raw,
            { timeout, data in
                ConnectionCore.from(data).timeouts[timeout!] = EventLoop.monotonicMilliseconds()
                return 1
            },
            { timeout, data in ConnectionCore.from(data).timeouts[timeout!] = nil },
            { timeout, data in ConnectionCore.from(data).timeouts[timeout!] = EventLoop.monotonicMilliseconds() },
            me, nil)
        dbus_connection_set_wakeup_main_function(
            raw,
            { data in
                let loop = ConnectionCore.from(data).loop
                if !loop.inLoop { loop.wake() }
            },
            me, nil)
        dbus_connection_set_dispatch_status_function(
            raw,
            { _, status, data in
                let loop = ConnectionCore.from(data).loop
                if status == DBUS_DISPATCH_DATA_REMAINS, !loop.inLoop { loop.wake() }
            },
            me, nil)
        dbus_connection_add_filter(
            raw,
            { _, raw, data in
                guard let raw else { return DBUS_HANDLER_RESULT_NOT_YET_HANDLED }
                dbus_message_ref(raw)
                let handled = ConnectionCore.from(data).filter(Message(owning: raw, received: true))
                return handled ? DBUS_HANDLER_RESULT_HANDLED : DBUS_HANDLER_RESULT_NOT_YET_HANDLED
            },
            me, nil)
    }

    private static func from(_ data: UnsafeMutableRawPointer?) -> ConnectionCore {
        Unmanaged<ConnectionCore>.fromOpaque(data!).takeUnretainedValue()
    }
}

/// A call's completion, run at most once.
private final class PendingReply {
    private var completion: (@Sendable (Result<Message, DBusError>) -> Void)?
    init(_ completion: @escaping @Sendable (Result<Message, DBusError>) -> Void) { self.completion = completion }

    func complete(_ result: Result<Message, DBusError>) {
        let body = completion
        completion = nil
        body?(result)
    }
}

/// What libdbus holds for a pending call's notify: the core, until libdbus
/// frees the call. A closed connection's late notification finds its call
/// no longer pending and does nothing. (Not weak: a weak reference would
/// make every retain of the core, one per message, take the slow path.)
private final class NotifyBox {
    let core: ConnectionCore
    init(core: ConnectionCore) { self.core = core }
}

extension DBusError {
    /// The error every call gets once its connection is closed.
    static let closed = DBusError(DBusError.Name.disconnected, "the connection is closed")
}
