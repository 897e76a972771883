import DBus

extension BackgroundFetchClient {
    /// Which bus the service is on.
    public enum Bus: Sendable, Hashable, CustomStringConvertible {
        /// The user's session bus (`DBUS_SESSION_BUS_ADDRESS`): the user's own service.
        case session
        /// The system bus.
        case system
        /// A bus at an explicit address, such as `unix:path=/run/user/1000/bus`.
        case address(String)

        public var description: String { busAddress.description }

        var busAddress: BusAddress {
            switch self {
            case .session: .session
            case .system: .system
            case .address(let address): .address(address)
            }
        }
    }
}
