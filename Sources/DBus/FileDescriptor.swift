import CDBus
import Glibc

/// A Unix file descriptor received in a message, owned: closed when this
/// goes (or at ``close()``). A logind inhibitor is one: it holds while the
/// descriptor is open.
public final class ReceivedFileDescriptor {
    public private(set) var rawValue: Int32

    init(_ rawValue: Int32) { self.rawValue = rawValue }

    public var isOpen: Bool { rawValue >= 0 }

    public func close() {
        guard rawValue >= 0 else { return }
        _ = Glibc.close(rawValue)
        rawValue = -1
    }

    deinit { close() }
}

extension Message {
    /// The Unix file descriptor that is the message's top-level argument
    /// `index` (type `h`), as a descriptor of this process's own; nil if that
    /// argument is not one. Each call gives a new descriptor.
    public func fileDescriptor(argument index: Int) -> ReceivedFileDescriptor? {
        var iter = DBusMessageIter()
        guard dbus_message_iter_init(raw, &iter) != 0 else { return nil }
        for _ in 0..<index where dbus_message_iter_next(&iter) == 0 { return nil }
        return Self.takeFileDescriptor(&iter)
    }

    /// The descriptor at `iter`, if it points at one: libdbus hands a
    /// duplicate, which the result owns.
    private static func takeFileDescriptor(_ iter: inout DBusMessageIter) -> ReceivedFileDescriptor? {
        guard dbus_message_iter_get_arg_type(&iter) == CDBUS_TYPE_UNIX_FD else { return nil }
        var fd: Int32 = -1
        withUnsafeMutablePointer(to: &fd) { dbus_message_iter_get_basic(&iter, $0) }
        return fd >= 0 ? ReceivedFileDescriptor(fd) : nil
    }
}

extension Message {
    /// The Unix file descriptor under `key` in the message's first argument,
    /// an `a{sv}` (as `ProcessFD` in `GetConnectionCredentials`' reply), as
    /// a descriptor of this process's own; nil if there is none.
    public func fileDescriptor(inDictionaryEntry key: String) -> ReceivedFileDescriptor? {
        var iter = DBusMessageIter()
        guard dbus_message_iter_init(raw, &iter) != 0, dbus_message_iter_get_arg_type(&iter) == CDBUS_TYPE_ARRAY else {
            return nil
        }
        var entries = DBusMessageIter()
        dbus_message_iter_recurse(&iter, &entries)
        while dbus_message_iter_get_arg_type(&entries) == CDBUS_TYPE_DICT_ENTRY {
            var entry = DBusMessageIter()
            dbus_message_iter_recurse(&entries, &entry)
            var name: UnsafePointer<CChar>? = nil
            if dbus_message_iter_get_arg_type(&entry) == CDBUS_TYPE_STRING {
                withUnsafeMutablePointer(to: &name) { dbus_message_iter_get_basic(&entry, $0) }
            }
            if let name, String(cString: name) == key, dbus_message_iter_next(&entry) != 0,
                dbus_message_iter_get_arg_type(&entry) == CDBUS_TYPE_VARIANT
            {
                var variant = DBusMessageIter()
                dbus_message_iter_recurse(&entry, &variant)
                return Self.takeFileDescriptor(&variant)
            }
            dbus_message_iter_next(&entries)
        }
        return nil
    }
}
