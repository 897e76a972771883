/// One D-Bus value, typed as it travels on the wire.
///
/// Containers carry the signature of their elements so that empty arrays and
/// variants can be written back exactly.
public indirect enum DBusValue: Sendable, Equatable, CustomStringConvertible {
    case byte(UInt8)
    case bool(Bool)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case double(Double)
    case string(String)
    case objectPath(String)
    case signature(String)
    /// A Unix file descriptor is not passed on; it stands as its index.
    case unixFD(Int32)
    /// An array; `element` is the signature of one element (`"s"`, `"{sv}"`, ...).
    case array(element: String, [DBusValue])
    case dictEntry(DBusValue, DBusValue)
    case structure([DBusValue])
    case variant(DBusValue)

    /// The value's complete D-Bus signature.
    public var signature: String {
        switch self {
        case .byte: "y"
        case .bool: "b"
        case .int16: "n"
        case .uint16: "q"
        case .int32: "i"
        case .uint32: "u"
        case .int64: "x"
        case .uint64: "t"
        case .double: "d"
        case .string: "s"
        case .objectPath: "o"
        case .signature: "g"
        case .unixFD: "h"
        case .array(let element, _): "a" + element
        case .dictEntry(let key, let value): "{" + key.signature + value.signature + "}"
        case .structure(let fields): "(" + fields.map(\.signature).joined() + ")"
        case .variant: "v"
        }
    }

    public var description: String {
        switch self {
        case .byte(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .uint64(let v): "\(v)"
        case .double(let v): "\(v)"
        case .string(let v): "\"\(v)\""
        case .objectPath(let v): "objectpath \"\(v)\""
        case .signature(let v): "signature \"\(v)\""
        case .unixFD(let v): "fd \(v)"
        case .array(_, let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .dictEntry(let k, let v): "\(k): \(v)"
        case .structure(let fields): "(" + fields.map(\.description).joined(separator: ", ") + ")"
        case .variant(let v): "<\(v)>"
        }
    }
}

// MARK: - Building and reading common shapes

extension DBusValue {
    /// An `a{sv}` dictionary, keys sorted so output is stable.
    public static func vardict(_ entries: [String: DBusValue]) -> DBusValue {
        .array(
            element: "{sv}",
            entries.sorted { $0.key < $1.key }.map { .dictEntry(.string($0.key), .variant($0.value)) }
        )
    }

    /// An `a{sv}` dictionary whose keys are a string enumeration's cases.
    public static func vardict<Key: RawRepresentable>(keyed entries: [Key: DBusValue]) -> DBusValue
    where Key.RawValue == String {
        vardict(Dictionary(uniqueKeysWithValues: entries.map { ($0.key.rawValue, $0.value) }))
    }

    public var stringValue: String? {
        switch self {
        case .string(let s), .objectPath(let s), .signature(let s): s
        default: nil
        }
    }

    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var uint32Value: UInt32? { if case .uint32(let v) = self { v } else { nil } }
    public var uint64Value: UInt64? { if case .uint64(let v) = self { v } else { nil } }

    /// The elements of an array, or nil.
    public var arrayValue: [DBusValue]? { if case .array(_, let items) = self { items } else { nil } }

    /// The fields of a struct, or nil.
    public var structValue: [DBusValue]? { if case .structure(let f) = self { f } else { nil } }

    /// The value inside a variant, or the value itself.
    public var unwrapped: DBusValue { if case .variant(let inner) = self { inner.unwrapped } else { self } }

    /// Reads an `a{sv}` (or any dictionary with string keys) as a Swift dictionary,
    /// variants unwrapped one level. Nil when the value is not such a dictionary
    /// or repeats a key.
    public var vardictValue: [String: DBusValue]? {
        guard case .array(let element, let items) = self, element.hasPrefix("{s") else { return nil }
        var result: [String: DBusValue] = [:]
        for item in items {
            guard case .dictEntry(.string(let key), let value) = item, result[key] == nil else { return nil }
            if case .variant(let inner) = value { result[key] = inner } else { result[key] = value }
        }
        return result
    }
}
