import CDBus
import Glibc

/// A D-Bus message: a method call, a reply, an error or a signal.
///
/// The class owns one libdbus message and releases it when it goes. A message
/// is complete when made: its factories take every argument and flag, and
/// nothing public changes it afterwards.
///
/// `@unchecked Sendable`: a C handle that is never mutated after construction
/// (libdbus locks it when sent), so reading it from any thread is safe.
public final class Message: @unchecked Sendable {
    public enum Kind: Sendable, Equatable {
        case methodCall, methodReturn, error, signal, invalid
    }

    let raw: OpaquePointer
    /// The sending connection's unique name, as the bus stamped it on a
    /// received message (nil on one made here): read once, as nearly every
    /// handler of a received message asks for it.
    public let sender: String?

    /// Takes over one reference to `raw`. `received`: it came from the bus,
    /// so it may carry a sender (asking libdbus for the sender of a message
    /// made here costs a walk of its whole header).
    init(owning raw: OpaquePointer, received: Bool = false) {
        self.raw = raw
        sender = received ? dbus_message_get_sender(raw).map { String(cString: $0) } : nil
    }

    deinit { dbus_message_unref(raw) }

    // MARK: Construction

    /// A method call. `expectsReply: false` sets `NO_REPLY_EXPECTED`;
    /// `autoStart: false` asks the bus not to start a service for it.
    public static func methodCall(
        destination: String?, path: String, interface: String?, member: String, _ arguments: [DBusValue] = [],
        expectsReply: Bool = true, autoStart: Bool = true
    ) throws(DBusError) -> Message {
        try checkPath(path)
        try checkMember(member)
        if let interface { try checkInterface(interface) }
        if let destination { try checkBusName(destination) }
        guard let raw = dbus_message_new_method_call(destination, path, interface, member) else {
            throw DBusError(DBusError.Name.noMemory, "out of memory")
        }
        let message = Message(owning: raw)
        try message.append(arguments)
        if !expectsReply { dbus_message_set_no_reply(raw, 1) }
        if !autoStart { dbus_message_set_auto_start(raw, 0) }
        return message
    }

    /// A call to the bus itself (`org.freedesktop.DBus`).
    public static func busDriverCall(_ member: String, _ arguments: [DBusValue] = []) throws(DBusError) -> Message {
        try methodCall(
            destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
            member: member, arguments)
    }

    public static func signal(
        path: String, interface: String, member: String, destination: String? = nil, _ arguments: [DBusValue] = []
    ) throws(DBusError) -> Message {
        try checkPath(path)
        try checkMember(member)
        try checkInterface(interface)
        guard let raw = dbus_message_new_signal(path, interface, member) else {
            throw DBusError(DBusError.Name.noMemory, "out of memory")
        }
        let message = Message(owning: raw)
        if let destination {
            try checkBusName(destination)
            dbus_message_set_destination(raw, destination)
        }
        try message.append(arguments)
        return message
    }

    /// The successful reply to this method call (one that was received, so has a serial).
    public func makeReply(_ arguments: [DBusValue] = []) throws(DBusError) -> Message {
        guard serial != 0 else { throw .failed("cannot reply to a message that was never sent") }
        if let key = ReplyTemplates.Key(arguments) {
            guard let reply = try ReplyTemplates.reply(to: raw, sender: dbus_message_get_sender(raw), key) else {
                throw DBusError(DBusError.Name.noMemory, "out of memory")
            }
            return Message(owning: reply)
        }
        guard let raw = dbus_message_new_method_return(raw) else {
            throw DBusError(DBusError.Name.noMemory, "out of memory")
        }
        let reply = Message(owning: raw)
        try reply.append(arguments)
        return reply
    }

    /// The error reply to this method call.
    public func makeErrorReply(_ error: DBusError) -> Message? {
        guard serial != 0 else { return nil }
        let name = Message.isValidErrorName(error.name) ? error.name : DBusError.Name.failed
        guard let raw = dbus_message_new_error(raw, name, error.message) else { return nil }
        return Message(owning: raw)
    }

    // MARK: Header fields

    public var kind: Kind {
        switch dbus_message_get_type(raw) {
        case DBUS_MESSAGE_TYPE_METHOD_CALL: .methodCall
        case DBUS_MESSAGE_TYPE_METHOD_RETURN: .methodReturn
        case DBUS_MESSAGE_TYPE_ERROR: .error
        case DBUS_MESSAGE_TYPE_SIGNAL: .signal
        default: .invalid
        }
    }

    public var destination: String? { dbus_message_get_destination(raw).map { String(cString: $0) } }
    public var path: String? { dbus_message_get_path(raw).map { String(cString: $0) } }
    public var interface: String? { dbus_message_get_interface(raw).map { String(cString: $0) } }
    public var member: String? { dbus_message_get_member(raw).map { String(cString: $0) } }
    public var errorName: String? { dbus_message_get_error_name(raw).map { String(cString: $0) } }
    public var signature: String { dbus_message_get_signature(raw).map { String(cString: $0) } ?? "" }
    public var serial: UInt32 { dbus_message_get_serial(raw) }

    /// The fields a call is routed by, as libdbus holds them, for dispatch
    /// to compare with ``CName/matches(_:)`` where it only needs to know
    /// whether they match: no String is made, and each field is looked up
    /// once. Valid while the message lives.
    struct Route {
        let path: UnsafePointer<CChar>?
        let interface: UnsafePointer<CChar>?
        let member: UnsafePointer<CChar>?
    }

    var route: Route {
        Route(path: dbus_message_get_path(raw), interface: dbus_message_get_interface(raw), member: dbus_message_get_member(raw))
    }

    func has(signature: CName) -> Bool { signature.withCString { dbus_message_has_signature(raw, $0) } != 0 }

    /// Gives an unsent message a serial, as sending would: for tests that
    /// build "received" calls without a bus.
    func assignSerial(_ serial: UInt32) { dbus_message_set_serial(raw, serial) }
    public var replySerial: UInt32 { dbus_message_get_reply_serial(raw) }
    /// Whether the caller wants a reply (false: `NO_REPLY_EXPECTED`).
    public var expectsReply: Bool { dbus_message_get_no_reply(raw) == 0 }

    /// Whether the bus may start a service for this call.
    public var autoStart: Bool { dbus_message_get_auto_start(raw) != 0 }

    /// The message's arguments, decoded.
    public var arguments: [DBusValue] { Marshalling.decode(raw) }

    /// For an error message, the error it carries.
    public var error: DBusError? {
        guard kind == .error else { return nil }
        let text = arguments.first?.stringValue ?? ""
        return DBusError(errorName ?? DBusError.Name.failed, text)
    }

    func append(_ arguments: [DBusValue]) throws(DBusError) {
        guard !arguments.isEmpty else { return }
        try Marshalling.encode(arguments, into: raw)
    }
}

// MARK: - Validation of names

extension Message {
    public static func isValidPath(_ s: String) -> Bool { dbus_validate_path(s, nil) != 0 }
    public static func isValidInterface(_ s: String) -> Bool { dbus_validate_interface(s, nil) != 0 }
    public static func isValidMember(_ s: String) -> Bool { dbus_validate_member(s, nil) != 0 }
    public static func isValidBusName(_ s: String) -> Bool { dbus_validate_bus_name(s, nil) != 0 }
    public static func isValidErrorName(_ s: String) -> Bool { dbus_validate_error_name(s, nil) != 0 }
    public static func isValidSignature(_ s: String) -> Bool { dbus_signature_validate(s, nil) != 0 }

    static func checkPath(_ s: String) throws(DBusError) {
        guard isValidPath(s) else { throw .invalidArgs("invalid object path '\(s)'") }
    }
    static func checkInterface(_ s: String) throws(DBusError) {
        guard isValidInterface(s) else { throw .invalidArgs("invalid interface name '\(s)'") }
    }
    static func checkMember(_ s: String) throws(DBusError) {
        guard isValidMember(s) else { throw .invalidArgs("invalid member name '\(s)'") }
    }
    static func checkBusName(_ s: String) throws(DBusError) {
        guard isValidBusName(s) else { throw .invalidArgs("invalid bus name '\(s)'") }
    }
}

/// A name kept both as text and as the NUL-terminated bytes libdbus
/// compares, made once: passing a `String` to C copies a short one each time.
struct CName: Sendable {
    let text: String
    private let bytes: ContiguousArray<CChar>

    init(_ text: String) {
        self.text = text
        bytes = text.utf8CString
    }

    func withCString<T>(_ body: (UnsafePointer<CChar>) -> T) -> T {
        bytes.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// Whether a header field libdbus holds (nil when absent) is this name.
    func matches(_ field: UnsafePointer<CChar>?) -> Bool {
        guard let field else { return false }
        return bytes.withUnsafeBufferPointer { strcmp($0.baseAddress!, field) == 0 }
    }
}
