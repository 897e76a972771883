/// Whether the service lets the app fetch in the background: the same numbers
/// as `expo-background-fetch`'s `BackgroundFetchStatus`.
public enum BackgroundFetchStatus: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The user switched background fetch off for this app (or for every app).
    case denied = 1
    /// The administrator's configuration restricts this app; the user cannot change it.
    case restricted = 2
    /// Background fetch works for this app.
    case available = 3

    public var description: String {
        switch self {
        case .denied: "Denied"
        case .restricted: "Restricted"
        case .available: "Available"
        }
    }
}
