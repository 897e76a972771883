import BackgroundFetchCore
import DBus
import Glibc
import Logging

/// The service: the engine wired to the bus.
///
/// Everything here runs on the connection's thread (handlers, the timer, the
/// idle hook), one thing at a time, which is why it may be shared with the
/// connection's closures without locks.
final class Daemon: @unchecked Sendable {
    let connection: BusConnection
    let engine: FetchEngine
    let store: SQLiteTaskStore
    let registry: CallerRegistry
    let config: DaemonConfig
    let logger: Logger
    /// On the session bus `FetchFinished` is broadcast; on the system bus it
    /// goes only to monitors allowed to see the app.
    let broadcastsFinished: Bool
    /// System bus: connections that used the manager interface, with their uid.
    var monitors: [String: UInt32] = [:]
    private var server: ObjectServer!
    private var timer: LoopTimer!
    private var armedDeadline: Int64?
    private var activatable = ActivatableNames()
    private var round = DeliveryRound()

    struct Settings {
        var bus: BusAddress
        var config: DaemonConfig
        var stateDirectory: String
        var bootID: String
        var procRoot = "/proc"
    }

    /// Connects, restores the stored state and starts serving; the name is
    /// requested last, once the object answers.
    init(settings: Settings, logger: Logger) throws(StartupError) {
        self.logger = logger
        config = settings.config
        broadcastsFinished = settings.bus != .system
        do {
            connection = try BusConnection.connect(settings.bus, threadName: "bgfetchd-bus")
        } catch {
            throw StartupError("cannot connect to \(settings.bus): \(error.message)")
        }
        // Fail fast, before touching state, when another bgfetchd serves this bus.
        if (try? connection.callBus("NameHasOwner", [.string(ServiceNames.busName)]).first?.boolValue) == true {
            connection.close()
            throw StartupError("the name \(ServiceNames.busName) is already owned on \(settings.bus)")
        }
        do {
            store = try SQLiteTaskStore(directory: settings.stateDirectory, logger: logger)
        } catch {
            throw StartupError(error.message)
        }
        engine = FetchEngine(config: config, store: store, clock: SystemClock(), logger: logger)
        registry = CallerRegistry(connection: connection, resolver: AppIdentityResolver(procRoot: settings.procRoot))
        server = ObjectServer(path: ServiceNames.objectPath, interfaces: Daemon.interfaces(serving: self, config: config))
        do {
            timer = try connection.makeTimer { [unowned self] in fire() }
        } catch {
            throw StartupError("cannot create a timer: \(error.message)")
        }
        engine.onEvent = { [unowned self] in send($0) }
        engine.isActivatable = { [unowned self] in activatable.contains($0.appID, connection: connection) }

        do {
            try registry.start()
        } catch {
            throw StartupError("cannot follow bus names: \(error.message)")
        }
        do {
            // Many tasks share a binding: ask the bus once per connection.
            var owners: [String: AppKey?] = [:]
            try engine.restore(bootID: settings.bootID) { [registry] binding, app in
                if owners[binding] == nil { owners[binding] = .some(registry.app(of: binding)) }
                return owners[binding]! == app
            }
        } catch {
            throw StartupError(error.message)
        }
        connection.setMessageHandler { [unowned self] in handle($0) }
        connection.setIdleHandler { [unowned self] in
            finishRound()
            armTimer()
        }
        connection.setDisconnectHandler { [logger] in
            logger.critical("the bus connection is gone; exiting")
            exit(1)
        }
        let owned: BusConnection.NameRequestResult
        do {
            owned = try connection.requestName(ServiceNames.busName)
        } catch {
            connection.close()
            throw StartupError("cannot request the name \(ServiceNames.busName): \(error.message)")
        }
        guard owned == .primaryOwner || owned == .alreadyOwner else {
            // Stop the connection's thread before the handlers' owner goes.
            connection.close()
            throw StartupError("the name \(ServiceNames.busName) is already owned on \(settings.bus)")
        }
        logger.info("serving", metadata: ["bus": "\(settings.bus)", "name": "\(ServiceNames.busName)"])
    }

    /// Stops serving. Every change was committed when it was acknowledged, so
    /// there is nothing left to write.
    func shutdown() {
        connection.perform { [self] in timer.invalidate() }
        connection.close()
        logger.info("stopped")
    }

    // MARK: Incoming messages

    private func handle(_ message: Message) -> Bool {
        switch message.kind {
        case .methodCall:
            startRound()
            let writesBefore = store.writes
            if let reply = server.reply(to: message) {
                round.add(.reply(reply, to: message, durable: store.writes != writesBefore))
            }
            return true
        case .signal:
            guard message.sender == "org.freedesktop.DBus", message.member == "NameOwnerChanged",
                message.interface == "org.freedesktop.DBus", message.signature == "sss"
            else { return false }
            let arguments = message.arguments.map { $0.stringValue ?? "" }
            if let departed = registry.nameOwnerChanged(name: arguments[0], oldOwner: arguments[1], newOwner: arguments[2]) {
                monitors[departed] = nil
                engine.connectionClosed(departed)
            }
            return false
        default:
            return false
        }
    }

    // MARK: Group commit

    /// Everything dispatched in one turn of the loop shares one transaction:
    /// replies and signals wait in the round until it is committed, then go
    /// out together. Many clients' changes cost one sync to disk.
    private func startRound() {
        guard !round.isOpen else { return }
        round.isOpen = true
        store.beginGroup()
    }

    private func finishRound() {
        guard round.isOpen else { return }
        round.isOpen = false
        var failure: FetchError?
        do {
            try store.endGroup()
        } catch {
            failure = error
            logger.error("a group of changes could not be stored; reloading", metadata: ["error": "\(error)"])
        }
        for item in round.take() {
            switch item {
            case .reply(let reply, let call, let durable):
                if durable, let failure {
                    if let error = call.makeErrorReply(failure.dbusError) { connection.send(error) }
                } else {
                    connection.send(reply)
                }
            case .signal(let signal):
                if failure == nil { connection.send(signal) }
            }
        }
        if failure != nil {
            do { try engine.reload() } catch { logger.critical("cannot reload the state", metadata: ["error": "\(error)"]) }
        }
    }

    // MARK: Time

    /// Arms the one timer for the engine's earliest deadline. Runs each time
    /// the connection has nothing left to dispatch.
    private func armTimer() {
        let deadline = engine.nextDeadline()
        guard deadline != armedDeadline else { return }
        armedDeadline = deadline
        guard let deadline else {
            timer.disarm()
            return
        }
        let delay = max(0, deadline - SystemClock().now())
        timer.arm(afterNanoseconds: UInt64(delay) * 1000)
    }

    private func fire() {
        startRound()
        armedDeadline = nil
        do {
            try engine.fireDue()
        } catch {
            logger.error("cannot store due fetches; retrying in a second", metadata: ["error": "\(error)"])
            armedDeadline = -1
            timer.arm(afterNanoseconds: 1_000_000_000)
        }
    }

    // MARK: Outgoing signals

    private func send(_ event: EngineEvent) {
        switch event {
        case .fetchRequested(let destination, let task, let requestID):
            emit("FetchRequested", to: destination, [.string(task.name), .uint64(requestID)])
        case .fetchExpired(let destination, let task, let requestID):
            emit("FetchExpired", to: destination, [.string(task.name), .uint64(requestID)])
        case .fetchFinished(let task, let requestID, let result):
            let arguments: [DBusValue] = [.string(task.app.appID), .string(task.name), .uint64(requestID), .uint32(result.rawValue)]
            if broadcastsFinished {
                emit("FetchFinished", interface: ServiceNames.managerInterface, to: nil, arguments)
                return
            }
            for (monitor, uid) in monitors where uid == 0 || uid == task.app.uid {
                emit("FetchFinished", interface: ServiceNames.managerInterface, to: monitor, arguments)
            }
        case .activateAndRequest(let task, let requestID):
            activate(task, requestID: requestID)
        }
    }

    private func emit(_ member: String, interface: String = ServiceNames.appInterface, to destination: String?, _ arguments: [DBusValue]) {
        do {
            let signal = try Message.signal(
                path: ServiceNames.objectPath, interface: interface, member: member, destination: destination, arguments)
            if round.isOpen { round.add(.signal(signal)) } else { connection.send(signal) }
        } catch {
            logger.error("cannot build a signal", metadata: ["member": "\(member)", "error": "\(error)"])
        }
    }

    /// Starts the app by bus activation, then sends the fetch to its name.
    private func activate(_ task: TaskKey, requestID: UInt64) {
        let appID = task.app.appID
        guard let call = try? Message.methodCall(
            destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
            member: "StartServiceByName", [.string(appID), .uint32(0)])
        else { return }
        connection.call(call, timeoutMilliseconds: 30_000) { [unowned self] result in
            switch result {
            case .success:
                emit("FetchRequested", to: appID, [.string(task.name), .uint64(requestID)])
            case .failure(let error):
                logger.warning("cannot start the app", metadata: ["app": "\(appID)", "error": "\(error)"])
                engine.activationFailed(task: task, requestID: requestID)
            }
        }
    }
}

/// What waits for the round's commit before it may be sent.
struct DeliveryRound {
    enum Item {
        /// `durable`: the call changed stored state, so the reply waits for the commit.
        case reply(Message, to: Message, durable: Bool)
        case signal(Message)
    }

    var isOpen = false
    private var items: [Item] = []

    mutating func add(_ item: Item) { items.append(item) }

    mutating func take() -> [Item] {
        defer { items.removeAll(keepingCapacity: true) }
        return items
    }
}

/// Why the daemon could not start: one line for the user.
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The bus's activatable names, asked for at most every few seconds.
struct ActivatableNames {
    private var names: Set<String> = []
    private var fetchedAt: Int64?

    mutating func contains(_ name: String, connection: BusConnection) -> Bool {
        let now = SystemClock().now()
        if fetchedAt.map({ now - $0 > 5_000_000 || now < $0 }) ?? true {
            fetchedAt = now
            let listed = (try? connection.callBus("ListActivatableNames").first?.arrayValue) ?? []
            names = Set(listed.compactMap(\.stringValue))
        }
        return names.contains(name)
    }
}
