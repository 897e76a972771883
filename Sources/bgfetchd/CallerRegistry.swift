import BackgroundFetchCore
import DBus

/// Who each connection is: its uid and app id, resolved once from the bus and
/// `/proc`, cached per connection and dropped when the connection leaves.
///
/// Like the daemon, it lives on the daemon's loop and never blocks it: every
/// question to the bus is asked without waiting for the answer.
///
/// It also follows `NameOwnerChanged` to know which well-known names each
/// connection owns, the third source of an app id.
@DaemonActor final class CallerRegistry {
    private let connection: BusConnection
    private let resolver: AppIdentityResolver
    private var identities: [String: AppKey] = [:] { didSet { lastFound = nil } }
    /// Connections the bus could not vouch for (they left before we asked).
    private var failures: [String: FetchError] = [:] { didSet { lastFound = nil } }
    /// The last connection found known, and what is known of it: a call's
    /// handler asks again about the caller the daemon just found known.
    /// Dropped whenever what is known changes (and the bus never gives a
    /// unique name twice, so it could not be another connection's anyway).
    private var lastFound: (sender: String, known: Result<Caller, FetchError>)?
    private var ownedNames: [String: Set<String>] = [:]

    static let nameOwnerChangedRule =
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'"

    init(connection: BusConnection, resolver: AppIdentityResolver) {
        self.connection = connection
        self.resolver = resolver
    }

    /// Subscribes to name changes, then reads who owns what now, asking for
    /// every name's owner at once.
    func start() async throws(DBusError) {
        try await connection.addMatch(Self.nameOwnerChangedRule)
        let names = try await connection.callBus("ListNames", []).first?.arrayValue ?? []
        let wellKnown = names.compactMap(\.stringValue).filter { !$0.hasPrefix(":") && $0 != "org.freedesktop.DBus" }
        for (name, owner) in await owners(of: wellKnown) { ownedNames[owner, default: []].insert(name) }
    }

    /// The unique name owning each of `names`, asked all at once; names with
    /// no owner (any more) are left out.
    private func owners(of names: [String]) async -> [String: String] {
        let answers = await connection.callBusEach("GetNameOwner", names.map { [.string($0)] })
        var owners: [String: String] = [:]
        for (name, answer) in zip(names, answers) {
            if let owner = (try? answer.get())?.first?.stringValue { owners[name] = owner }
        }
        return owners
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

    /// The caller behind `sender`, as ``lookUp(_:completion:)`` found it:
    /// the daemon serves a connection's calls only once it is known. Refused
    /// when the bus could not tell who it is: never guessed.
    func caller(_ sender: String) throws(FetchError) -> Caller {
        let caller = try user(sender)
        guard !caller.app.appID.isEmpty else { throw FetchError(.accessDenied, "cannot tell which app \(sender) is") }
        return caller
    }

    /// The caller behind `sender` for a management call, which acts by uid
    /// alone: its app id may be empty (the bus gave no pid).
    func user(_ sender: String) throws(FetchError) -> Caller {
        guard let known = known(sender) else { throw FetchError(.accessDenied, "cannot identify the caller \(sender) yet") }
        return try known.get()
    }

    /// Whether the bus has already said who `sender` is (or that it cannot).
    func isKnown(_ sender: String) -> Bool { known(sender) != nil }

    /// What is known of `sender` without asking the bus, if anything.
    func known(_ sender: String) -> Result<Caller, FetchError>? {
        if let lastFound, lastFound.sender == sender { return lastFound.known }
        let known: Result<Caller, FetchError>
        if let app = identities[sender] {
            known = .success(Caller(app: app, connection: sender))
        } else if let failure = failures[sender] {
            known = .failure(failure)
        } else {
            return nil
        }
        lastFound = (sender, known)
        return known
    }

    /// Asks the bus who `sender` is without blocking the loop; `completion`
    /// runs on it once the answer is cached.
    func lookUp(_ sender: String, completion: @escaping @DaemonActor @Sendable () -> Void) {
        let question: Message
        do {
            question = try Message.busDriverCall("GetConnectionCredentials", [.string(sender)])
        } catch {
            cache(sender, .failure(error))
            return completion()
        }
        connection.call(question, timeoutMilliseconds: 25_000) { result in
            DaemonActor.assumeIsolated {
                // Where the bus offers a pidfd, the process is read through it.
                let pidfd = try? result.get().fileDescriptor(inDictionaryEntry: "ProcessFD")
                self.cache(sender, result.map(\.arguments), pidfd: pidfd)
                completion()
            }
        }
    }

    private func cache(_ sender: String, _ result: Result<[DBusValue], DBusError>, pidfd: ReceivedFileDescriptor? = nil) {
        defer { pidfd?.close() }
        do throws(FetchError) {
            switch result {
            case .success(let arguments):
                identities[sender] = try identify(sender, credentials: arguments.first?.vardictValue ?? [:], pidfd: pidfd)
            case .failure(let error):
                throw FetchError(.accessDenied, "cannot identify the caller \(sender): \(error.message)")
            }
        } catch {
            failures[sender] = error
        }
    }

    /// Which of `bindings` (connection → the app that made it) are gone
    /// from the bus or belong to another app now; asks for all at once.
    func departed(of bindings: [String: AppKey]) async -> Set<String> {
        let bindingNames = Array(bindings.keys)
        let answers = await connection.callBusEach("GetConnectionCredentials", bindingNames.map { [.string($0)] })
        let credentials = Dictionary(uniqueKeysWithValues: zip(bindingNames, answers))
        var departed: Set<String> = []
        for (binding, app) in bindings {
            // Only live connections are cached: a departed one sends no
            // NameOwnerChanged that would ever clear its entry.
            if let result = credentials[binding], case .success = result { cache(binding, result) }
            if (try? caller(binding).app) != app { departed.insert(binding) }
        }
        return departed
    }

    /// Drops what is known of a connection that has left.
    func forget(_ sender: String) {
        identities[sender] = nil
        failures[sender] = nil
    }

    private func identify(
        _ sender: String, credentials: [String: DBusValue], pidfd: ReceivedFileDescriptor? = nil
    ) throws(FetchError) -> AppKey {
        guard let uid = credentials["UnixUserID"]?.uint32Value else {
            throw FetchError(.accessDenied, "the bus does not know the uid of \(sender)")
        }
        var pid = credentials["ProcessID"]?.uint32Value
        if let pidfd, let pidOfFD = ProcessFD.pid(of: pidfd.rawValue) { pid = UInt32(pidOfFD) }
        let names = ownedNames[sender].map { Array($0) } ?? []
        // No app id (the bus gave no pid, nothing else names it): the uid
        // still serves management calls; app calls are refused (`caller`).
        let appID = resolver.appID(pid: pid, ownedNames: names) ?? ""
        // Read through a pidfd: if the process ended meanwhile, its pid may
        // be another process's by now, and what was read is not trusted.
        if let pidfd, ProcessFD.hasExited(pidfd.rawValue) {
            throw FetchError(.accessDenied, "the process of \(sender) ended while it was being identified")
        }
        return AppKey(uid: uid, appID: appID)
    }
}
