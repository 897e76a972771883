import CDBus
import Glibc

/// Reads and writes message bodies with libdbus's iterators.
enum Marshalling {
    // MARK: Decoding

    static func decode(_ message: OpaquePointer) -> [DBusValue] {
        var iter = DBusMessageIter()
        guard dbus_message_iter_init(message, &iter) != 0 else { return [] }
        return readAll(&iter)
    }

    private static func readAll(_ iter: inout DBusMessageIter) -> [DBusValue] {
        var values: [DBusValue] = []
        while dbus_message_iter_get_arg_type(&iter) != CDBUS_TYPE_INVALID {
            values.append(read(&iter))
            dbus_message_iter_next(&iter)
        }
        return values
    }

    private static func basic<T>(_ iter: inout DBusMessageIter, _ zero: T) -> T {
        var value = zero
        withUnsafeMutablePointer(to: &value) { dbus_message_iter_get_basic(&iter, $0) }
        return value
    }

    private static func string(_ iter: inout DBusMessageIter) -> String {
        var pointer: UnsafePointer<CChar>? = nil
        withUnsafeMutablePointer(to: &pointer) { dbus_message_iter_get_basic(&iter, $0) }
        return pointer.map { String(cString: $0) } ?? ""
    }

    private static func read(_ iter: inout DBusMessageIter) -> DBusValue {
        let type = dbus_message_iter_get_arg_type(&iter)
        switch type {
        case CDBUS_TYPE_BYTE: return .byte(basic(&iter, UInt8(0)))
        case CDBUS_TYPE_BOOLEAN: return .bool(basic(&iter, dbus_bool_t(0)) != 0)
        case CDBUS_TYPE_INT16: return .int16(basic(&iter, Int16(0)))
        case CDBUS_TYPE_UINT16: return .uint16(basic(&iter, UInt16(0)))
        case CDBUS_TYPE_INT32: return .int32(basic(&iter, Int32(0)))
        case CDBUS_TYPE_UINT32: return .uint32(basic(&iter, UInt32(0)))
        case CDBUS_TYPE_INT64: return .int64(basic(&iter, Int64(0)))
        case CDBUS_TYPE_UINT64: return .uint64(basic(&iter, UInt64(0)))
        case CDBUS_TYPE_DOUBLE: return .double(basic(&iter, Double(0)))
        case CDBUS_TYPE_STRING: return .string(string(&iter))
        case CDBUS_TYPE_OBJECT_PATH: return .objectPath(string(&iter))
        case CDBUS_TYPE_SIGNATURE: return .signature(string(&iter))
        case CDBUS_TYPE_UNIX_FD:
            // libdbus hands us a duplicate; we do not keep descriptors.
            let fd = basic(&iter, Int32(-1))
            if fd >= 0 { close(fd) }
            return .unixFD(fd)
        case CDBUS_TYPE_ARRAY:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(&iter, &sub)
            let element = signatureOf(&sub) ?? "v"
            return .array(element: element, readAll(&sub))
        case CDBUS_TYPE_DICT_ENTRY:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(&iter, &sub)
            let fields = readAll(&sub)
            return .dictEntry(fields.first ?? .string(""), fields.count > 1 ? fields[1] : .string(""))
        case CDBUS_TYPE_STRUCT:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(&iter, &sub)
            return .structure(readAll(&sub))
        case CDBUS_TYPE_VARIANT:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(&iter, &sub)
            return .variant(readAll(&sub).first ?? .string(""))
        default:
            return .string("")
        }
    }

    /// The signature of the element an array iterator walks, even when empty.
    private static func signatureOf(_ iter: inout DBusMessageIter) -> String? {
        guard let raw = dbus_message_iter_get_signature(&iter) else { return nil }
        defer { dbus_free(raw) }
        return String(cString: raw)
    }

    // MARK: Encoding

    static func encode(_ values: [DBusValue], into message: OpaquePointer) throws(DBusError) {
        var iter = DBusMessageIter()
        dbus_message_iter_init_append(message, &iter)
        for value in values {
            try write(value, &iter)
        }
    }

    private static func appendBasic<T>(_ iter: inout DBusMessageIter, _ type: Int32, _ value: T) throws(DBusError) {
        var copy = value
        let ok = withUnsafePointer(to: &copy) { dbus_message_iter_append_basic(&iter, type, $0) }
        guard ok != 0 else { throw DBusError(DBusError.Name.noMemory, "out of memory") }
    }

    private static func appendString(_ iter: inout DBusMessageIter, _ type: Int32, _ value: String) throws(DBusError) {
        // libdbus aborts the process on invalid UTF-8 or an embedded NUL; refuse such text here.
        guard !value.utf8.contains(0) else { throw .invalidArgs("string contains a NUL byte") }
        if type == CDBUS_TYPE_STRING, dbus_validate_utf8(value, nil) == 0 {
            throw .invalidArgs("string is not valid UTF-8")
        }
        if type == CDBUS_TYPE_OBJECT_PATH, !Message.isValidPath(value) {
            throw .invalidArgs("invalid object path '\(value)'")
        }
        if type == CDBUS_TYPE_SIGNATURE, !Message.isValidSignature(value) {
            throw .invalidArgs("invalid signature '\(value)'")
        }
        let ok = value.withCString { cString -> dbus_bool_t in
            var pointer: UnsafePointer<CChar>? = cString
            return withUnsafePointer(to: &pointer) { dbus_message_iter_append_basic(&iter, type, $0) }
        }
        guard ok != 0 else { throw DBusError(DBusError.Name.noMemory, "out of memory") }
    }

    private static func container(
        _ iter: inout DBusMessageIter, _ type: Int32, _ signature: String?, _ body: (inout DBusMessageIter) throws(DBusError) -> Void
    ) throws(DBusError) {
        var sub = DBusMessageIter()
        let opened: dbus_bool_t
        if let signature {
            guard Message.isValidSignature(signature) || type == CDBUS_TYPE_ARRAY else {
                throw .invalidArgs("invalid signature '\(signature)'")
            }
            opened = dbus_message_iter_open_container(&iter, type, signature, &sub)
        } else {
            opened = dbus_message_iter_open_container(&iter, type, nil, &sub)
        }
        guard opened != 0 else { throw DBusError(DBusError.Name.noMemory, "out of memory") }
        do {
            try body(&sub)
        } catch {
            dbus_message_iter_abandon_container(&iter, &sub)
            throw error
        }
        guard dbus_message_iter_close_container(&iter, &sub) != 0 else {
            throw DBusError(DBusError.Name.noMemory, "out of memory")
        }
    }

    private static func write(_ value: DBusValue, _ iter: inout DBusMessageIter) throws(DBusError) {
        switch value {
        case .byte(let v): try appendBasic(&iter, CDBUS_TYPE_BYTE, v)
        case .bool(let v): try appendBasic(&iter, CDBUS_TYPE_BOOLEAN, dbus_bool_t(v ? 1 : 0))
        case .int16(let v): try appendBasic(&iter, CDBUS_TYPE_INT16, v)
        case .uint16(let v): try appendBasic(&iter, CDBUS_TYPE_UINT16, v)
        case .int32(let v): try appendBasic(&iter, CDBUS_TYPE_INT32, v)
        case .uint32(let v): try appendBasic(&iter, CDBUS_TYPE_UINT32, v)
        case .int64(let v): try appendBasic(&iter, CDBUS_TYPE_INT64, v)
        case .uint64(let v): try appendBasic(&iter, CDBUS_TYPE_UINT64, v)
        case .double(let v): try appendBasic(&iter, CDBUS_TYPE_DOUBLE, v)
        case .string(let v): try appendString(&iter, CDBUS_TYPE_STRING, v)
        case .objectPath(let v): try appendString(&iter, CDBUS_TYPE_OBJECT_PATH, v)
        case .signature(let v): try appendString(&iter, CDBUS_TYPE_SIGNATURE, v)
        case .unixFD:
            throw .invalidArgs("passing file descriptors is not supported")
        case .array(let element, let items):
            guard Message.isValidSignature("a" + element) else { throw .invalidArgs("invalid array signature 'a\(element)'") }
            for item in items where item.signature != element {
                throw .invalidArgs("array of '\(element)' holds a '\(item.signature)'")
            }
            try container(&iter, CDBUS_TYPE_ARRAY, element) { (sub: inout DBusMessageIter) throws(DBusError) in
                for item in items { try write(item, &sub) }
            }
        case .dictEntry(let key, let val):
            try container(&iter, CDBUS_TYPE_DICT_ENTRY, nil) { (sub: inout DBusMessageIter) throws(DBusError) in
                try write(key, &sub)
                try write(val, &sub)
            }
        case .structure(let fields):
            guard !fields.isEmpty else { throw .invalidArgs("empty structure") }
            try container(&iter, CDBUS_TYPE_STRUCT, nil) { (sub: inout DBusMessageIter) throws(DBusError) in
                for field in fields { try write(field, &sub) }
            }
        case .variant(let inner):
            try container(&iter, CDBUS_TYPE_VARIANT, inner.signature) { (sub: inout DBusMessageIter) throws(DBusError) in
                try write(inner, &sub)
            }
        }
    }
}
