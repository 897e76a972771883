/// An error as D-Bus carries it: a dotted error name and a human-readable message.
///
/// Services reply with these; clients receive them from failed calls. The
/// standard names live in ``DBusError/Name``.
public struct DBusError: Error, Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var message: String

    public init(_ name: String, _ message: String) {
        self.name = name
        self.message = message
    }

    public var description: String { "\(name): \(message)" }

    /// The `org.freedesktop.DBus.Error.*` names this project uses.
    public enum Name {
        public static let failed = "org.freedesktop.DBus.Error.Failed"
        public static let invalidArgs = "org.freedesktop.DBus.Error.InvalidArgs"
        public static let unknownMethod = "org.freedesktop.DBus.Error.UnknownMethod"
        public static let unknownInterface = "org.freedesktop.DBus.Error.UnknownInterface"
        public static let unknownObject = "org.freedesktop.DBus.Error.UnknownObject"
        public static let unknownProperty = "org.freedesktop.DBus.Error.UnknownProperty"
        public static let propertyReadOnly = "org.freedesktop.DBus.Error.PropertyReadOnly"
        public static let noReply = "org.freedesktop.DBus.Error.NoReply"
        public static let serviceUnknown = "org.freedesktop.DBus.Error.ServiceUnknown"
        public static let nameHasNoOwner = "org.freedesktop.DBus.Error.NameHasNoOwner"
        public static let disconnected = "org.freedesktop.DBus.Error.Disconnected"
        public static let accessDenied = "org.freedesktop.DBus.Error.AccessDenied"
        public static let noMemory = "org.freedesktop.DBus.Error.NoMemory"
    }

    public static func invalidArgs(_ message: String) -> DBusError { DBusError(Name.invalidArgs, message) }
    public static func failed(_ message: String) -> DBusError { DBusError(Name.failed, message) }
}
