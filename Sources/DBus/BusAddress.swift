/// Which bus to connect to.
public enum BusAddress: Sendable, Equatable, CustomStringConvertible {
    /// The user's session bus (`DBUS_SESSION_BUS_ADDRESS`).
    case session
    /// The system bus.
    case system
    /// A bus at an explicit address, such as `unix:path=/tmp/bus`.
    case address(String)

    public var description: String {
        switch self {
        case .session: "the session bus"
        case .system: "the system bus"
        case .address(let a): "the bus at \(a)"
        }
    }
}
