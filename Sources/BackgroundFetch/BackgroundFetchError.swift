import BackgroundFetchContract
import DBus

/// Why a call to the bgfetch service failed.
///
/// A struct wrapping a code, so codes can be added without breaking callers
/// that `switch`: compare with `error.code == .noSuchTask`. The codes follow
/// the contract's error names; ``dbusErrorName`` keeps the name as it came.
public struct BackgroundFetchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure it is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case invalidArgs, noSuchTask, unknownRequest, denied, restricted, limitExceeded, accessDenied
            case failed, serviceNotRunning, busUnavailable, nameTaken, timedOut, unexpected
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A malformed task name, option, interval or result (`org.freedesktop.DBus.Error.InvalidArgs`).
        public static let invalidArgs = Code(.invalidArgs)
        /// The app has no task by that name (`Error.NoSuchTask`).
        public static let noSuchTask = Code(.noSuchTask)
        /// A `FinishFetch` for a request that is not open (`Error.UnknownRequest`).
        public static let unknownRequest = Code(.unknownRequest)
        /// The user switched background fetch off for the app (`Error.Denied`).
        public static let denied = Code(.denied)
        /// The administrator restricts the app (`Error.Restricted`).
        public static let restricted = Code(.restricted)
        /// A per-app or per-user task limit would be passed (`Error.LimitExceeded`).
        public static let limitExceeded = Code(.limitExceeded)
        /// A management call on something the caller may not touch
        /// (`Error.AccessDenied`, or the bus's own `AccessDenied`).
        public static let accessDenied = Code(.accessDenied)
        /// The service could not store the change; nothing changed (`org.freedesktop.DBus.Error.Failed`).
        public static let failed = Code(.failed)
        /// Nobody owns `org.bgfetch.BackgroundFetch1` and the bus cannot start it.
        public static let serviceNotRunning = Code(.serviceNotRunning)
        /// The bus cannot be reached, or the connection to it is gone (reconnecting).
        public static let busUnavailable = Code(.busUnavailable)
        /// The app id asked for as a bus name is owned by another connection.
        public static let nameTaken = Code(.nameTaken)
        /// No reply came in time.
        public static let timedOut = Code(.timedOut)
        /// Anything else: an error name this library does not know, or a reply
        /// of the wrong shape.
        public static let unexpected = Code(.unexpected)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// What went wrong, for people.
    public var message: String
    /// The D-Bus error name behind it, when there was one.
    public var dbusErrorName: String?

    public init(_ code: Code, _ message: String, dbusErrorName: String? = nil) {
        self.code = code
        self.message = message
        self.dbusErrorName = dbusErrorName
    }

    public var description: String { message }

    /// The error a failed call on `bus` gave.
    init(_ error: DBusError, on bus: BackgroundFetchClient.Bus) {
        let code = Self.code(forDBusName: error.name)
        let message: String
        switch code {
        case .serviceNotRunning: message = "the bgfetch service is not running on \(bus)"
        case .busUnavailable: message = "cannot reach \(bus): \(error.message)"
        case .timedOut: message = "the bgfetch service on \(bus) did not answer in time"
        default: message = error.message.isEmpty ? error.name : error.message
        }
        self.init(code, message, dbusErrorName: error.name)
    }

    static func code(forDBusName name: String) -> Code {
        if let service = ServiceErrorName(dbusName: name) { return code(for: service) }
        return switch name {
        case DBusError.Name.accessDenied: .accessDenied
        case DBusError.Name.serviceUnknown, DBusError.Name.nameHasNoOwner: .serviceNotRunning
        case DBusError.Name.noReply, "org.freedesktop.DBus.Error.Timeout", "org.freedesktop.DBus.Error.TimedOut": .timedOut
        case DBusError.Name.disconnected, "org.freedesktop.DBus.Error.NoServer", "org.freedesktop.DBus.Error.FileNotFound",
            "org.freedesktop.DBus.Error.IOError", "org.freedesktop.DBus.Error.BadAddress", "org.freedesktop.DBus.Error.NotSupported",
            "org.freedesktop.DBus.Error.NoNetwork", "org.freedesktop.DBus.Error.AuthFailed":
            .busUnavailable
        default: .unexpected
        }
    }

    /// The code of each of the service's errors.
    static func code(for name: ServiceErrorName) -> Code {
        switch name {
        case .invalidArgs: .invalidArgs
        case .failed: .failed
        case .noSuchTask: .noSuchTask
        case .unknownRequest: .unknownRequest
        case .denied: .denied
        case .restricted: .restricted
        case .limitExceeded: .limitExceeded
        case .accessDenied: .accessDenied
        }
    }

    static func notConnected(_ bus: BackgroundFetchClient.Bus) -> BackgroundFetchError {
        BackgroundFetchError(.busUnavailable, "not connected to \(bus); reconnecting")
    }

    static func badReply(_ member: String) -> BackgroundFetchError {
        BackgroundFetchError(.unexpected, "the bgfetch service's reply to \(member) has an unexpected shape")
    }
}
