import BackgroundFetchCore
import DBus

/// Who each connection is: its uid and app id, resolved once from the bus and
/// `/proc`, cached per connection and dropped when the connection leaves.
///
/// Like the daemon, it lives on the connection's thread.
///
/// It also follows `NameOwnerChanged` to know which well-known names each
/// connection owns, the third source of an app id.
final class CallerRegistry: @unchecked Sendable {
    private let connection: BusConnection
    private let resolver: AppIdentityResolver
    private var identities: [String: AppKey] = [:]
    /// Connections the bus could not vouch for (they left before we asked).
    private var failures: [String: FetchError] = [:]
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
            failures[name] = nil
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
    /// (it has left already): never guessed. Answers from the cache when it
    /// can; otherwise asks the bus and waits (the daemon looks callers up
    /// ahead with ``lookUp(_:completion:)`` so that this rarely happens).
    func caller(_ sender: String) throws(FetchError) -> Caller {
        if let known = known(sender) { return try known.get() }
        let credentials: [String: DBusValue]
        do {
            credentials = try connection.callBus("GetConnectionCredentials", [.string(sender)]).first?.vardictValue ?? [:]
        } catch {
            throw FetchError(.accessDenied, "cannot identify the caller \(sender): \(error.message)")
        }
        let app = try identify(sender, credentials: credentials)
        identities[sender] = app
        return Caller(app: app, connection: sender)
    }

    /// What is known of `sender` without asking the bus, if anything.
    func known(_ sender: String) -> Result<Caller, FetchError>? {
        if let app = identities[sender] { return .success(Caller(app: app, connection: sender)) }
        if let failure = failures[sender] { return .failure(failure) }
        return nil
    }

    /// Asks the bus who `sender` is without blocking the connection's
    /// thread; `completion` runs on it once the answer is cached.
    func lookUp(_ sender: String, completion: @escaping @Sendable () -> Void) {
        connection.callBus("GetConnectionCredentials", [.string(sender)]) { [unowned self] result in
            do throws(FetchError) {
                switch result {
                case .success(let arguments):
                    identities[sender] = try identify(sender, credentials: arguments.first?.vardictValue ?? [:])
                case .failure(let error):
                    throw FetchError(.accessDenied, "cannot identify the caller \(sender): \(error.message)")
                }
            } catch {
                failures[sender] = error
            }
            completion()
        }
    }

    /// Drops what is known of a connection that has left.
    func forget(_ sender: String) {
        identities[sender] = nil
        failures[sender] = nil
    }

    /// The app behind a connection, or nil if it is not on the bus.
    func app(of unique: String) -> AppKey? {
        try? caller(unique).app
    }

    private func identify(_ sender: String, credentials: [String: DBusValue]) throws(FetchError) -> AppKey {
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
