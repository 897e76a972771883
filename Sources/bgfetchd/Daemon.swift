import BackgroundFetchCore
import DBus
import Glibc
import Logging

/// The service: the engine wired to the bus.
///
/// It is isolated to ``DaemonActor``, whose executor is the event loop that
/// serves the bus connection: handlers, the timer and the idle hook all run
/// there, one thing at a time, and the compiler checks that nothing else
/// touches this state.
@DaemonActor final class Daemon {
    let connection: BusConnection
    let engine: FetchEngine
    let registry: CallerRegistry
    let config: DaemonConfig
    let clock: WallClock
    let logger: Logger
    /// On the session bus `FetchFinished` is broadcast; on the system bus it
    /// goes only to monitors allowed to see the app.
    let broadcastsFinished: Bool
    /// System bus: connections that used the manager interface, with their uid.
    var monitors: [String: UInt32] = [:]
    private(set) var server: ObjectServer!
    private(set) var timer: LoopTimer!
    var armedDeadline: Int64?
    let activatable: ActivatableNames
    /// Apps started the desktop way (`ActivateAction`); nil on the system bus.
    let desktopEntries: DesktopEntries?
    /// NetworkManager, UPower, power-profiles-daemon and logind, on the system bus.
    let machine: MachineMonitor
    let sleepInhibitor: SleepInhibitor
    /// The system bus connection of a session-bus daemon (nil on the system
    /// bus, whose one connection serves both).
    let systemConnection: BusConnection?
    /// Calls from connections whose identity is being looked up, in order.
    var waiting: [String: [Message]] = [:]
    /// Calls from identified connections, waiting for their turn.
    var calls = FairQueue<String, QueuedCall>()
    var round = DeliveryRound()
    /// Messages that came while starting, before the state was restored.
    private var startupBacklog: [Message] = []

    struct Settings: Sendable {
        var bus: BusAddress
        var config: DaemonConfig
        var stateDirectory: String
        var bootID: String
        var procRoot = "/proc"
        var clock: WallClock = SystemClock()
        /// Where desktop entries are looked for (`applications` directories);
        /// empty on the system bus, where apps are not started the desktop way.
        var desktopDirectories: [String] = []
        /// A second connection, to the system bus, when serving another bus
        /// (or why there is none).
        var systemBus: Result<BusConnection, DBusError>?
        var systemConnection: BusConnection? { try? systemBus?.get() }
    }

    /// Connects on the calling thread (connecting blocks: never on the loop).
    nonisolated static func connect(to bus: BusAddress) throws(StartupError) -> BusConnection {
        do {
            return try BusConnection.connect(bus, on: DaemonActor.loop)
        } catch {
            throw StartupError("cannot connect to \(bus): \(error.message)")
        }
    }

    /// The system bus, for the services that say what the machine offers,
    /// when serving another bus; on the same loop. Without one (a container,
    /// a test) nothing holds a fetch back.
    nonisolated static func connectSystemBus(serving bus: BusAddress) -> Result<BusConnection, DBusError>? {
        guard bus != .system else { return nil }
        do {
            return .success(try BusConnection.connect(.system, on: DaemonActor.loop))
        } catch {
            return .failure(error)
        }
    }

    /// Restores the stored state and starts serving on `connection`; the
    /// name is requested last, once the object answers. Every question to the
    /// bus on the way is asked without blocking the loop.
    static func start(on connection: BusConnection, settings: Settings, logger: Logger) async throws(StartupError) -> Daemon {
        // Fail fast, before touching state, when another bgfetchd serves this bus.
        let owned = try? await connection.callBus("NameHasOwner", [.string(Wire.busName)]).first?.boolValue
        if owned == true {
            connection.close()
            throw StartupError("the name \(Wire.busName) is already owned on \(settings.bus)")
        }
        let daemon = try Daemon(connection: connection, settings: settings, logger: logger)
        daemon.holdMessagesUntilServing()
        do {
            try await daemon.registry.start()
        } catch {
            throw daemon.abandon("cannot follow bus names: \(error.message)")
        }
        await daemon.activatable.load()
        do {
            try await daemon.machine.start()
        } catch {
            daemon.logger.notice("cannot follow the system services: network, power and sleep hold nothing back", metadata: ["error": "\(error.message)"])
        }
        do {
            let bindings = try daemon.engine.loadForRestore(bootID: settings.bootID)
            try daemon.engine.finishRestore(departed: await daemon.registry.departed(of: bindings))
            // Changes seen while starting are in the conditions read here;
            // from now on each one goes to the engine as it comes.
            try daemon.engine.updateConditions(daemon.machine.conditions)
            daemon.machine.onChange = { [unowned daemon] in daemon.machineChanged($0) }
        } catch {
            throw daemon.abandon(error.message)
        }
        daemon.serve()
        let name: BusConnection.NameRequestResult
        do {
            name = try await connection.requestName(Wire.busName)
        } catch {
            throw daemon.abandon("cannot request the name \(Wire.busName): \(error.message)")
        }
        guard name == .primaryOwner || name == .alreadyOwner else {
            throw daemon.abandon("the name \(Wire.busName) is already owned on \(settings.bus)")
        }
        logger.info("serving", metadata: ["bus": "\(settings.bus)", "name": "\(Wire.busName)"])
        if case .failure(let error) = settings.systemBus {
            logger.notice("no system bus: network, power and sleep hold nothing back", metadata: ["error": "\(error.message)"])
        }
        return daemon
    }

    private init(connection: BusConnection, settings: Settings, logger: Logger) throws(StartupError) {
        self.connection = connection
        self.logger = logger
        config = settings.config
        clock = settings.clock
        broadcastsFinished = settings.bus != .system
        let store: SQLiteTaskStore
        do {
            store = try SQLiteTaskStore(directory: settings.stateDirectory, logger: logger)
        } catch {
            connection.close()
            throw StartupError(error.message)
        }
        engine = FetchEngine(config: config, store: store, clock: clock, logger: logger)
        registry = CallerRegistry(connection: connection, resolver: AppIdentityResolver(procRoot: settings.procRoot))
        activatable = ActivatableNames(connection: connection, clock: clock)
        desktopEntries = settings.desktopDirectories.isEmpty
            ? nil : DesktopEntries(directories: settings.desktopDirectories, loop: connection.loop, logger: logger)
        systemConnection = settings.systemConnection
        machine = MachineMonitor(connection: settings.systemConnection ?? connection, logger: logger)
        sleepInhibitor = SleepInhibitor(connection: settings.systemConnection ?? connection, logger: logger)
        server = ObjectServer(path: Wire.objectPath, interfaces: Daemon.interfaces(serving: self, config: config))
        do {
            timer = try connection.loop.makeTimer(clock: .wallClock) { event in
                DaemonActor.assumeIsolated { self.timerEvent(event) }
            }
        } catch {
            connection.close()
            throw StartupError("cannot create a timer: \(error.message)")
        }
        engine.onEvent = { [unowned self] in send($0) }
        engine.isActivatable = { [unowned self] in
            desktopEntries?.isDBusActivatable($0.appID) == true || activatable.contains($0.appID)
        }
        if let systemConnection {
            systemConnection.setMessageHandler { message in
                DaemonActor.assumeIsolated { self.machine.handle(message) }
            }
            systemConnection.setDisconnectHandler { [logger] in
                DaemonActor.assumeIsolated {
                    logger.warning("the system bus connection is gone: network, power and sleep hold nothing back")
                    self.machine.lostBus()
                }
            }
        }
    }

    /// Gives up starting: releases the connection; returns the error to throw.
    private func abandon(_ reason: String) -> StartupError {
        timer.invalidate()
        systemConnection?.close()
        connection.close()
        return StartupError(reason)
    }

    /// Start-up awaits the bus while the loop goes on dispatching: what
    /// arrives meanwhile (a connection leaving, a name changing hands) is
    /// kept, in order, for ``serve()`` to handle once the state is restored.
    private func holdMessagesUntilServing() {
        startupBacklog.removeAll()
        connection.setMessageHandler { message in
            DaemonActor.assumeIsolated {
                self.startupBacklog.append(message)
                return message.kind == .methodCall  // answered once served
            }
        }
    }

    /// Handles what start-up held back and installs the serving handlers:
    /// from here on calls are served.
    private func serve() {
        let backlog = startupBacklog
        startupBacklog = []
        for message in backlog { _ = handle(message) }
        connection.setMessageHandler { message in
            DaemonActor.assumeIsolated { self.handle(message) }
        }
        connection.loop.setIdleHandler {
            DaemonActor.assumeIsolated {
                self.serveCalls()
                self.finishRound()
                self.armTimer()
                self.holdSleepWhileFetching()
                return !self.calls.isEmpty
            }
        }
        connection.setDisconnectHandler { [logger] in
            logger.critical("the bus connection is gone; exiting")
            exit(1)
        }
    }

    /// Stops serving, draining first: the calls already queued are served
    /// and their changes committed before the connection closes; nothing new
    /// is read meanwhile. Calls still waiting for their caller's identity go
    /// unanswered, having changed nothing (the bus tells their callers that
    /// bgfetchd left).
    func shutdown() {
        while !calls.isEmpty { serveCalls() }
        finishRound()
        timer.invalidate()
        desktopEntries?.invalidate()
        sleepInhibitor.release()
        systemConnection?.close()
        connection.close()
        logger.info("stopped")
    }

    // MARK: Incoming messages

    /// Serves one call. A reply to a call that changed stored state waits
    /// for the round's commit; so does any later reply to the same caller,
    /// to keep its replies in order. Other replies go at once.
    func dispatch(_ message: Message, calling method: ObjectServer.Found? = nil) {
        startRound()
        let (reply, durable) = engine.trackingWrites { server.reply(to: message, calling: method) }
        guard let reply else { return }
        noteIfRefused(reply, message)
        if durable || round.isWaiting(for: message.sender) {
            round.add(.reply(reply, to: message, durable: durable))
        } else {
            connection.send(reply)
        }
    }

    /// Logs a refusal (at debug level: a client's mistake is not the daemon's).
    func noteIfRefused(_ reply: Message, _ call: Message) {
        guard reply.kind == .error else { return }
        logger.debug(
            "refused",
            metadata: [
                "caller": "\(call.sender ?? "")", "member": "\(CallerText.shown(call.member ?? ""))",
                "error": "\(reply.errorName ?? "")", "reason": "\(reply.error?.message ?? "")",
            ])
    }

    private func handle(_ message: Message) -> Bool {
        switch message.kind {
        case .methodCall:
            let sender = message.sender ?? ""
            // One bound on what a connection has waiting: for its turn once
            // known, for its identity until then (never both at once).
            if sender.isEmpty || registry.isKnown(sender) {
                assert(waiting.isEmpty || waiting[sender] == nil, "a known caller has calls waiting for its identity")
                let method = server.method(of: message)
                if let method, answersAtOnce(method, from: sender) {
                    answerQuery(message, calling: method)
                } else if !calls.enqueue(QueuedCall(message, method), from: sender, limit: Self.queuedCallsPerConnection) {
                    refuse(message, Self.tooManyWaiting)
                }
            } else if let queued = waiting[sender]?.count {
                guard queued < Self.queuedCallsPerConnection else {
                    refuse(message, Self.tooManyWaiting)
                    return true
                }
                waiting[sender]?.append(message)
            } else {
                // Ask the bus who this is without stopping everyone else;
                // the caller's calls wait, in order, for the answer.
                waiting[sender] = [message]
                registry.lookUp(sender) { [self] in
                    guard let queued = waiting.removeValue(forKey: sender) else {
                        registry.forget(sender)  // it left while we asked
                        return
                    }
                    for call in queued { calls.enqueue(QueuedCall(call, server.method(of: call)), from: sender) }
                }
            }
            return true
        case .signal:
            // On the system bus the one connection also carries the machine's services.
            if systemConnection == nil, machine.handle(message) { return true }
            guard message.sender == "org.freedesktop.DBus", message.member == "NameOwnerChanged",
                message.interface == "org.freedesktop.DBus", message.signature == "sss"
            else { return false }
            let arguments = message.arguments.map { $0.stringValue ?? "" }
            if arguments[0].hasPrefix(":"), arguments[2].isEmpty {
                // A connection leaves: what it asked before is done first, as
                // it was sent, while the registry still knows who it was.
                for call in calls.removeAll(of: arguments[0]) { dispatch(call.message, calling: call.method) }
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
