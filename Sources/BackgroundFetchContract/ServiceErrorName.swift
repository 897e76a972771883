/// Every error the service replies with, and its D-Bus name: one table for
/// both directions (the daemon names its refusals, clients read them back).
public enum ServiceErrorName: String, Sendable, CaseIterable {
    /// A malformed task name, option, interval or result.
    case invalidArgs
    /// The change could not be stored; nothing changed.
    case failed
    case noSuchTask
    case unknownRequest
    case denied
    case restricted
    case limitExceeded
    case accessDenied

    /// The service's own errors live under this prefix.
    public static let prefix = "org.bgfetch.BackgroundFetch1.Error."

    /// The name on the wire: the standard D-Bus name for the two generic
    /// failures, the service's own name for the rest.
    public var dbusName: String {
        switch self {
        case .invalidArgs: "org.freedesktop.DBus.Error.InvalidArgs"
        case .failed: "org.freedesktop.DBus.Error.Failed"
        default: Self.prefix + rawValue.prefix(1).uppercased() + rawValue.dropFirst()
        }
    }

    /// The error behind a name from the wire, if the service uses it.
    public init?(dbusName: String) {
        guard let match = Self.allCases.first(where: { $0.dbusName == dbusName }) else { return nil }
        self = match
    }
}
