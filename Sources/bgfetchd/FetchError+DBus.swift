import BackgroundFetchCore
import DBus

extension FetchError {
    /// The contract's D-Bus error for this refusal.
    var dbusError: DBusError { DBusError(kind.dbusName, message) }
}
