import BackgroundFetchCore
import DBus

/// The contract's names.
enum ServiceNames {
    static let busName = "org.bgfetch.BackgroundFetch1"
    static let objectPath = "/org/bgfetch/BackgroundFetch1"
    static let appInterface = "org.bgfetch.BackgroundFetch1"
    static let managerInterface = "org.bgfetch.BackgroundFetch1.Manager"
    static let errorPrefix = "org.bgfetch.BackgroundFetch1.Error."
    static let version = "0.1.0"
}

extension FetchError {
    /// The contract's D-Bus error for this refusal.
    var dbusError: DBusError {
        let name: String
        switch kind {
        case .invalidArgs: name = DBusError.Name.invalidArgs
        case .failed: name = DBusError.Name.failed
        case .noSuchTask: name = ServiceNames.errorPrefix + "NoSuchTask"
        case .unknownRequest: name = ServiceNames.errorPrefix + "UnknownRequest"
        case .denied: name = ServiceNames.errorPrefix + "Denied"
        case .restricted: name = ServiceNames.errorPrefix + "Restricted"
        case .limitExceeded: name = ServiceNames.errorPrefix + "LimitExceeded"
        case .accessDenied: name = ServiceNames.errorPrefix + "AccessDenied"
        }
        return DBusError(name, message)
    }
}
