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
    private(set) var server: ObjectServer!
    private(set) var timer: LoopTimer!
    var armedDeadline: Int64?
    var activatable: ActivatableNames!
    /// Calls from connections whose identity is being looked up, in order.
    var waiting: [String: [Message]] = [:]
    /// Calls from identified connections, waiting for their turn.
    var calls = FairQueue<String, Message>()
    var round = DeliveryRound()

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
        activatable = ActivatableNames(connection: connection)
        engine.isActivatable = { [unowned self] in activatable.contains($0.appID) }

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
            serveCalls()
            finishRound()
            armTimer()
            return !calls.isEmpty
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
    /// there is nothing left to write; calls still queued go unanswered (the
    /// bus tells their callers that bgfetchd left), having changed nothing.
    func shutdown() {
        connection.perform { [self] in timer.invalidate() }
        connection.close()
        logger.info("stopped")
    }

    // MARK: Incoming messages

    /// Serves one call. A reply to a call that changed stored state waits
    /// for the round's commit; so does any later reply to the same caller,
    /// to keep its replies in order. Other replies go at once.
    func dispatch(_ message: Message) {
        startRound()
        let writesBefore = store.writes
        guard let reply = server.reply(to: message) else { return }
        let durable = store.writes != writesBefore
        if durable || round.isWaiting(for: message.sender) {
            round.add(.reply(reply, to: message, durable: durable))
        } else {
            connection.send(reply)
        }
    }

    private func handle(_ message: Message) -> Bool {
        switch message.kind {
        case .methodCall:
            let sender = message.sender ?? ""
            // One bound on what a connection has waiting: for its identity, then its turn.
            guard calls.count(of: sender) + (waiting[sender]?.count ?? 0) < Self.queuedCallsPerConnection else {
                refuse(message, Self.tooManyWaiting)
                return true
            }
            if sender.isEmpty || registry.known(sender) != nil {
                calls.enqueue(message, from: sender)
            } else if waiting[sender] != nil {
                waiting[sender]?.append(message)
            } else {
                // Ask the bus who this is without stopping everyone else;
                // the caller's calls wait, in order, for the answer.
                waiting[sender] = [message]
                registry.lookUp(sender) { [unowned self] in
                    guard let queued = waiting.removeValue(forKey: sender) else {
                        registry.forget(sender)  // it left while we asked
                        return
                    }
                    for call in queued { calls.enqueue(call, from: sender) }
                }
            }
            return true
        case .signal:
            guard message.sender == "org.freedesktop.DBus", message.member == "NameOwnerChanged",
                message.interface == "org.freedesktop.DBus", message.signature == "sss"
            else { return false }
            let arguments = message.arguments.map { $0.stringValue ?? "" }
            if arguments[0].hasPrefix(":"), arguments[2].isEmpty {
                // A connection leaves: what it asked before is done first, as
                // it was sent, while the registry still knows who it was.
                for call in calls.removeAll(of: arguments[0]) { dispatch(call) }
            }
            if let departed = registry.nameOwnerChanged(name: arguments[0], oldOwner: arguments[1], newOwner: arguments[2]) {
                monitors[departed] = nil
                // Its calls still waiting for its identity go unanswered: it has left.
                waiting[departed] = nil
                startRound()  // its tasks go in the round's one commit
                engine.connectionClosed(departed)
            }
            return false
        default:
            return false
        }
    }
}
