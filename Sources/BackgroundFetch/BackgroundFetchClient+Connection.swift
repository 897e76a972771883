import DBus

/// The connection's life: attaching to a new connection, following the
/// service's name, routing its signals, and reconnecting after the bus goes.
extension BackgroundFetchClient {
    /// Makes `connection` the current one: installs the handlers, follows the
    /// service's name, takes ``appID``, and, if the service runs, reads its
    /// settings and registers again what this object registered.
    func attach(_ connection: BusConnection) async throws(BackgroundFetchError) {
        let generation = state.withLock { state -> UInt64 in
            state.generation += 1
            state.connection = connection
            state.serviceOwner = nil
            return state.generation
        }
        connection.setMessageHandler { [weak self, weak connection] message in
            guard let self, let connection else { return false }
            return handle(message, on: connection, generation: generation)
        }
        connection.setDisconnectHandler { [weak self] in self?.connectionLost(generation: generation) }
        _ = try await ServiceCall.callBus(connection, on: bus, "AddMatch", [.string(Wire.nameOwnerChangedRule)])
        if let appID {
            let doNotQueue: UInt32 = 4
            let reply = try await ServiceCall.callBus(connection, on: bus, "RequestName", [.string(appID), .uint32(doNotQueue)])
            let primaryOwner: UInt32 = 1, alreadyOwner: UInt32 = 4
            guard let code = reply.first?.uint32Value, code == primaryOwner || code == alreadyOwner else {
                throw BackgroundFetchError(.nameTaken, "the bus name \(appID) is owned by another connection on \(bus)")
            }
        }
        if await lookUpServiceOwner(connection, generation: generation) {
            await resynchronize(generation: generation)
        }
    }

    /// Asks the bus who owns the service's name and records it on the
    /// connection's thread, in order with `NameOwnerChanged`. Returns whether
    /// the service runs.
    private func lookUpServiceOwner(_ connection: BusConnection, generation: UInt64) async -> Bool {
        await withCheckedContinuation { continuation in
            connection.callBus("GetNameOwner", [.string(Wire.busName)]) { [weak self] result in
                let owner = (try? result.get())?.first?.stringValue
                self?.setServiceOwner(owner, generation: generation)
                continuation.resume(returning: owner != nil)
            }
        }
    }

    private func setServiceOwner(_ owner: String?, generation: UInt64) {
        state.withLock { state in
            guard state.generation == generation else { return }
            state.serviceOwner = owner
            if owner == nil { state.fetchTimeout = nil }
        }
    }

    /// After the service (re)appeared: reads `FetchTimeout` and registers
    /// again, with the same options, every task this object registered.
    func resynchronize(generation: UInt64) async {
        guard let connection = state.withLock({ $0.generation == generation ? $0.connection : nil }) else { return }
        if let timeout = try? await ServiceCall.properties(connection, on: bus)["FetchTimeout"]?.uint32Value {
            state.withLock { if $0.generation == generation { $0.fetchTimeout = .seconds(timeout) } }
        }
        let tasks = state.withLock { $0.registered }.sorted { $0.key < $1.key }
        for (name, options) in tasks {
            // Skip what was unregistered or registered anew meanwhile.
            guard state.withLock({ $0.generation == generation && $0.registered[name] == options }) else { continue }
            _ = try? await ServiceCall.call(connection, on: bus, "RegisterTask", [.string(name), options.dbusValue])
        }
    }

    // MARK: Incoming signals (on the connection's thread)

    private func handle(_ message: Message, on connection: BusConnection, generation: UInt64) -> Bool {
        if message.kind == .methodCall { return handleCall(message, on: connection, generation: generation) }
        guard message.kind == .signal else { return false }
        if message.sender == "org.freedesktop.DBus", message.interface == "org.freedesktop.DBus",
            message.member == "NameOwnerChanged"
        {
            let arguments = message.arguments.compactMap(\.stringValue)
            guard arguments.count == 3, arguments[0] == Wire.busName else { return false }
            let owner = arguments[2].isEmpty ? nil : arguments[2]
            setServiceOwner(owner, generation: generation)
            if owner != nil {
                Task { [weak self] in await self?.resynchronize(generation: generation) }
            }
            return true
        }
        guard message.interface == Wire.appInterface, message.path == Wire.objectPath else { return false }
        let arguments = message.arguments
        guard message.signature == "st", let name = arguments[0].stringValue, let requestID = arguments[1].uint64Value
        else { return true }
        let member = message.member
        whenFromService(message.sender, on: connection, generation: generation) { [weak self] in
            switch member {
            case "FetchRequested": self?.fetchRequested(task: name, requestID: requestID)
            case "FetchExpired": self?.fetchExpired(requestID: requestID)
            default: break
            }
        }
        return true
    }

    /// `org.freedesktop.Application` on the app's path, when this object
    /// answers desktop activation: `ActivateAction("background-fetch",
    /// [<(task, id)>], …)` from the service runs the task like a
    /// `FetchRequested`; `Activate` is accepted and does nothing else.
    private func handleCall(_ message: Message, on connection: BusConnection, generation: UInt64) -> Bool {
        guard answersDesktopActivation, let appID, message.path == DesktopActivation.objectPath(forAppID: appID),
            message.interface == DesktopActivation.interface || message.interface == nil
        else { return false }
        func reply(_ error: DBusError? = nil) {
            guard message.expectsReply else { return }
            if let error {
                if let answer = message.makeErrorReply(error) { _ = connection.send(answer) }
            } else if let answer = try? message.makeReply() {
                _ = connection.send(answer)
            }
        }
        switch (message.member, message.signature) {
        case ("Activate", "a{sv}"):
            reply()
        case ("ActivateAction", "sava{sv}"):
            let arguments = message.arguments
            guard arguments[0].stringValue == DesktopActivation.action else {
                reply(DBusError(DBusError.Name.invalidArgs, "this app has no action '\(arguments[0].stringValue ?? "")'"))
                return true
            }
            guard case .array(_, let parameters) = arguments[1], case .variant(.structure(let fields))? = parameters.first,
                fields.count == 2, let name = fields[0].stringValue, let requestID = fields[1].uint64Value
            else {
                reply(DBusError(DBusError.Name.invalidArgs, "background-fetch takes one (st) parameter: the task and the request id"))
                return true
            }
            reply()
            whenFromService(message.sender, on: connection, generation: generation) { [weak self] in
                self?.fetchRequested(task: name, requestID: requestID)
            }
        default:
            reply(DBusError(DBusError.Name.unknownMethod, "\(DesktopActivation.interface) has no \(message.member ?? "") here"))
        }
        return true
    }

    /// Runs `deliver` if a signal comes from the service. The owner is known
    /// from `NameOwnerChanged`; a sender that is not it is checked with the
    /// bus, without blocking the connection's loop, and let through while the
    /// name has no owner (the service sends nothing before it takes its name
    /// today, but a restarting one might).
    private func whenFromService(
        _ sender: String?, on connection: BusConnection, generation: UInt64, deliver: @escaping @Sendable () -> Void
    ) {
        guard let sender else { return }
        if state.withLock({ $0.serviceOwner }) == sender { return deliver() }
        connection.callBus("GetNameOwner", [.string(Wire.busName)]) { [weak self] result in
            switch result {
            case .success(let arguments):
                guard let owner = arguments.first?.stringValue else { return }
                self?.setServiceOwner(owner, generation: generation)
                if owner == sender { deliver() }
            case .failure(let error):
                if error.name == DBusError.Name.nameHasNoOwner { deliver() }
            }
        }
    }

    // MARK: Reconnecting

    /// The bus went away (on the dead connection's thread): forget the
    /// connection and, unless a loop is at it already, start reconnecting.
    private func connectionLost(generation: UInt64) {
        let (lost, startLoop) = state.withLock { state -> (BusConnection?, Bool) in
            guard state.generation == generation, !state.closed else { return (nil, false) }
            let lost = state.connection
            state.connection = nil
            state.serviceOwner = nil
            guard !state.reconnecting else { return (lost, false) }
            state.reconnecting = true
            return (lost, true)
        }
        lost?.close()
        guard startLoop else { return }
        Task { [weak self] in
            var delay = Duration.milliseconds(100)
            while true {
                try? await Task.sleep(for: delay)
                guard let self, !state.withLock({ $0.closed }) else { return }
                if await reconnectOnce() { return }
                delay = min(delay * 2, .seconds(30))
            }
        }
    }

    /// One attempt; true when done (connected, or closed meanwhile).
    private func reconnectOnce() async -> Bool {
        let connection: BusConnection
        do throws(BackgroundFetchError) {
            connection = try ServiceCall.connect(bus, threadName: "bgfetch-client")
        } catch {
            return false
        }
        do throws(BackgroundFetchError) {
            try await attach(connection)
        } catch {
            state.withLock { if $0.connection === connection { $0.connection = nil } }
            connection.close()
            return false
        }
        // Lost again while attaching? Then this loop goes on.
        return state.withLock { state in
            guard state.closed || state.connection === connection else { return false }
            state.reconnecting = false
            return true
        }
    }
}
