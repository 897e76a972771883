import CDBus
import Synchronization

/// Replies that carry one small value (a status, a yes or no) are copied from
/// a template made once per value. Adding the first argument to a fresh reply
/// makes libdbus rewrite the header's signature field, which costs more than
/// copying a whole small message and setting its two reply fields.
enum ReplyTemplates {
    /// The values with a template: few, so the set stays small.
    enum Key: Hashable {
        case bool(Bool)
        case uint32(UInt32)

        init?(_ arguments: [DBusValue]) {
            guard arguments.count == 1 else { return nil }
            switch arguments[0] {
            case .bool(let value): self = .bool(value)
            case .uint32(let value) where value < 16: self = .uint32(value)
            default: return nil
            }
        }

        var value: DBusValue {
            switch self {
            case .bool(let value): .bool(value)
            case .uint32(let value): .uint32(value)
            }
        }
    }

    /// Templates by value; a template is never sent, only copied, under the lock.
    private static let templates = Mutex<[Key: Message]>([:])

    /// The reply to `call` carrying `key`'s value, or nil when out of memory.
    static func reply(to call: OpaquePointer, sender: UnsafePointer<CChar>?, _ key: Key) throws(DBusError) -> OpaquePointer? {
        let copy = try templates.withLock { templates throws(DBusError) -> OpaquePointer? in
            if let template = templates[key] { return dbus_message_copy(template.raw) }
            guard let raw = dbus_message_new(DBUS_MESSAGE_TYPE_METHOD_RETURN) else { return nil }
            let template = Message(owning: raw)
            try template.append([key.value])
            dbus_message_set_no_reply(raw, 1)
            templates[key] = template
            return dbus_message_copy(raw)
        }
        guard let copy else { return nil }
        // What dbus_message_new_method_return sets, besides the type and the flag.
        guard dbus_message_set_reply_serial(copy, dbus_message_get_serial(call)) != 0,
            sender == nil || dbus_message_set_destination(copy, sender) != 0
        else {
            dbus_message_unref(copy)
            return nil
        }
        return copy
    }
}
