import BackgroundFetchCore
import DBus

/// Who each connection is: its uid and app id, resolved once from the bus and
/// `/proc`, cached per connection and dropped when the connection leaves.
///
/// It also follows `NameOwnerChanged` to know which well-known names each
/// connection owns, the third source of an app id.
final class CallerRegistry {
    private let connection: BusConnection
    private let resolver: AppIdentityResolver
    private var identities: [String: AppKey] = [:]
    private var ownedNames: [String: Set<String>] = [:]

    static let nameOwnerChangedRule =
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'"

    init(connection: BusConnection, resolver: AppIdentityResolver) {
        self.connection = connection
        self.resolver = resolver
    }

    /// Subscribes to name changes, then reads who owns what now.
    func start() throws(DBusError) {
        try connection.addMatch(Self.nameOwnerChangedRule)
        let names = try connection.callBus("ListNames").first?.arrayValue ?? []
        for case .string(let name) in names where !name.hasPrefix(":") && name != "org.freedesktop.DBus" {
            if let owner = try? connection.callBus("GetNameOwner", [.string(name)]).first?.stringValue {
                ownedNames[owner, default: []].insert(name)
            }
        }
    }

    /// Follows one `NameOwnerChanged`; returns the unique name of a connection
    /// that left the bus, if that is what it says.
    func nameOwnerChanged(name: String, oldOwner: String, newOwner: String) -> String? {
        if name.hasPrefix(":") {
            guard newOwner.isEmpty else { return nil }
            identities[name] = nil
            ownedNames[name] = nil
            return name
        }
        if !oldOwner.isEmpty {
            ownedNames[oldOwner]?.remove(name)
            if ownedNames[oldOwner]?.isEmpty == true { ownedNames[oldOwner] = nil }
        }
        if !newOwner.isEmpty { ownedNames[newOwner, default: []].insert(name) }
        return nil
    }

    /// The caller behind `sender`. Refused when the bus cannot tell who it is
    /// (it has left already): never guessed.
    func caller(_ sender: String) throws(FetchError) -> Caller {
        if let app = identities[sender] { return Caller(app: app, connection: sender) }
        let app = try resolve(sender)
        identities[sender] = app
        return Caller(app: app, connection: sender)
    }

    /// The app behind a connection, or nil if it is not on the bus.
    func app(of unique: String) -> AppKey? {
        try? caller(unique).app
    }

    private func resolve(_ sender: String) throws(FetchError) -> AppKey {
        let credentials: [String: DBusValue]
        do {
            credentials = try connection.callBus("GetConnectionCredentials", [.string(sender)]).first?.vardictValue ?? [:]
        } catch {
            throw FetchError(.accessDenied, "cannot identify the caller \(sender): \(error.message)")
        }
        guard let uid = credentials["UnixUserID"]?.uint32Value else {
            throw FetchError(.accessDenied, "the bus does not know the uid of \(sender)")
        }
        let pid = credentials["ProcessID"]?.uint32Value
        let names = ownedNames[sender].map { Array($0) } ?? []
        guard let appID = resolver.appID(pid: pid, ownedNames: names), !appID.isEmpty else {
            throw FetchError(.accessDenied, "cannot tell which app \(sender) is")
        }
        return AppKey(uid: uid, appID: appID)
    }
}
