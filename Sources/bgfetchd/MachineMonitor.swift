import BackgroundFetchCore
import DBus
import Logging

/// Follows the system services that say what the machine offers —
/// NetworkManager, UPower, power-profiles-daemon and logind — on the system
/// bus, by their signals alone (no polling), and reports each change as
/// ``MachineConditions``.
///
/// A service that is not on the bus counts as met; it is followed from the
/// moment it appears (`NameOwnerChanged`) and counts as met again when it
/// vanishes. Its properties are read once when it appears (`GetAll`), then
/// kept from `PropertiesChanged`.
@DaemonActor final class MachineMonitor {
    /// One D-Bus object whose properties feed the conditions.
    struct Source: Sendable {
        var service: String
        var path: String
        var interface: String
        /// Applies changed properties to the service's own record.
        var apply: @Sendable (inout Readings, [String: DBusValue]) -> Void
    }

    /// What each service last said; nil while it is not on the bus.
    struct Readings: Sendable, Equatable {
        var networkState: UInt32?
        var metered: UInt32?
        var onBattery: Bool?
        var warningLevel: UInt32?
        var activeProfile: String?
        var legacyActiveProfile: String?
        var sleeping = false
    }

    static let networkManager = "org.freedesktop.NetworkManager"
    static let upower = "org.freedesktop.UPower"
    static let powerProfiles = "org.freedesktop.UPower.PowerProfiles"
    static let legacyPowerProfiles = "net.hadess.PowerProfiles"
    static let logind = "org.freedesktop.login1"
    static let services = [networkManager, upower, powerProfiles, legacyPowerProfiles, logind]

    static let sources: [Source] = [
        Source(service: networkManager, path: "/org/freedesktop/NetworkManager", interface: "org.freedesktop.NetworkManager") {
            readings, properties in
            if let state = properties["State"]?.uint32Value { readings.networkState = state }
            if let metered = properties["Metered"]?.uint32Value { readings.metered = metered }
        },
        Source(service: upower, path: "/org/freedesktop/UPower", interface: "org.freedesktop.UPower") { readings, properties in
            if let onBattery = properties["OnBattery"]?.boolValue { readings.onBattery = onBattery }
        },
        Source(service: upower, path: "/org/freedesktop/UPower/devices/DisplayDevice", interface: "org.freedesktop.UPower.Device") {
            readings, properties in
            if let level = properties["WarningLevel"]?.uint32Value { readings.warningLevel = level }
        },
        Source(
            service: powerProfiles, path: "/org/freedesktop/UPower/PowerProfiles", interface: "org.freedesktop.UPower.PowerProfiles"
        ) { readings, properties in
            if let profile = properties["ActiveProfile"]?.stringValue { readings.activeProfile = profile }
        },
        Source(service: legacyPowerProfiles, path: "/net/hadess/PowerProfiles", interface: "net.hadess.PowerProfiles") {
            readings, properties in
            if let profile = properties["ActiveProfile"]?.stringValue { readings.legacyActiveProfile = profile }
        },
    ]

    let connection: BusConnection
    let logger: Logger
    /// Called with the new conditions each time they change.
    var onChange: (MachineConditions) -> Void = { _ in }
    /// The unique name owning each followed service.
    private(set) var owners: [String: String] = [:]
    private(set) var readings = Readings()
    private(set) var conditions = MachineConditions.unknown

    init(connection: BusConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Subscribes to every signal it follows, then asks who owns each service
    /// and reads the present ones, all without blocking the loop.
    func start() async throws(DBusError) {
        var rules = Self.services.map {
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='\($0)'"
        }
        rules += Self.sources.map {
            "type='signal',sender='\($0.service)',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                + "path='\($0.path)',arg0='\($0.interface)'"
        }
        rules.append(
            "type='signal',sender='\(Self.logind)',interface='org.freedesktop.login1.Manager',member='PrepareForSleep',"
                + "path='/org/freedesktop/login1'")
        for rule in rules { try await connection.addMatch(rule) }
        let replies = await connection.callBusEach("GetNameOwner", Self.services.map { [.string($0)] })
        for (service, reply) in zip(Self.services, replies) {
            if case .success(let arguments) = reply, let owner = arguments.first?.stringValue { owners[service] = owner }
        }
        // Every present service's properties, all asked at once: the first
        // due fetch already knows the machine.
        let present = Self.sources.filter { owners[$0.service] != nil }
        let askedOwners = present.map { owners[$0.service] }
        var calls: [Message] = []
        for source in present { calls.append(try getAll(source)) }
        let answers = await connection.callEach(calls)
        update { readings in
            for ((source, answer), owner) in zip(zip(present, answers), askedOwners) {
                // A service that left (or changed hands) meanwhile says nothing now.
                guard owners[source.service] == owner, case .success(let reply) = answer else { continue }
                source.apply(&readings, reply.arguments.first?.vardictValue ?? [:])
            }
        }
    }

    /// The system bus connection went away (the bus restarted): nothing is
    /// known, so nothing is held back.
    func lostBus() {
        owners.removeAll()
        update { $0 = Readings() }
    }

    private func getAll(_ source: Source) throws(DBusError) -> Message {
        try Message.methodCall(
            destination: source.service, path: source.path, interface: "org.freedesktop.DBus.Properties", member: "GetAll",
            [.string(source.interface)], autoStart: false)
    }

    /// Handles a signal it follows; false for anything else.
    func handle(_ message: Message) -> Bool {
        guard message.kind == .signal, let sender = message.sender else { return false }
        switch (message.interface, message.member) {
        case ("org.freedesktop.DBus", "NameOwnerChanged"):
            guard sender == "org.freedesktop.DBus", message.signature == "sss" else { return false }
            let arguments = message.arguments.map { $0.stringValue ?? "" }
            guard Self.services.contains(arguments[0]) else { return false }
            vanished(arguments[0])
            if !arguments[2].isEmpty { appeared(arguments[0], owner: arguments[2]) }
            return false  // the caller registry may follow the same signal
        case ("org.freedesktop.DBus.Properties", "PropertiesChanged"):
            guard message.signature == "sa{sv}as", let path = message.path else { return false }
            let arguments = message.arguments
            guard let interface = arguments[0].stringValue,
                let source = Self.sources.first(where: { $0.path == path && $0.interface == interface }),
                owners[source.service] == sender
            else { return false }
            update { source.apply(&$0, arguments[1].vardictValue ?? [:]) }
            if case .array(_, let invalidated) = arguments[2], !invalidated.isEmpty { read(source) }
            return true
        case ("org.freedesktop.login1.Manager", "PrepareForSleep"):
            guard owners[Self.logind] == sender, let sleeping = message.arguments.first?.boolValue else { return false }
            logger.info(sleeping ? "the machine prepares to sleep: no new fetch until it resumes" : "the machine resumed")
            update { $0.sleeping = sleeping }
            return true
        default:
            return false
        }
    }

    /// Whether logind is on the bus (for the sleep inhibitor).
    var logindOwner: String? { owners[Self.logind] }

    private func appeared(_ service: String, owner: String) {
        owners[service] = owner
        for source in Self.sources where source.service == service { read(source) }
    }

    /// A service left: what it said no longer holds anything back.
    private func vanished(_ service: String) {
        guard owners.removeValue(forKey: service) != nil else { return }
        update { readings in
            switch service {
            case Self.networkManager: (readings.networkState, readings.metered) = (nil, nil)
            case Self.upower: (readings.onBattery, readings.warningLevel) = (nil, nil)
            case Self.powerProfiles: readings.activeProfile = nil
            case Self.legacyPowerProfiles: readings.legacyActiveProfile = nil
            case Self.logind: readings.sleeping = false
            default: break
            }
        }
    }

    /// Reads every property of `source` (when it appears, or when a change
    /// only invalidated some).
    private func read(_ source: Source) {
        let owner = owners[source.service]
        let call: Message
        do {
            call = try getAll(source)
        } catch {
            return logger.error("cannot build a GetAll call", metadata: ["service": "\(source.service)", "error": "\(error)"])
        }
        // The reply comes on the loop's thread: the daemon's actor.
        connection.call(call, timeoutMilliseconds: 25_000) { result in
            DaemonActor.assumeIsolated {
                guard case .success(let reply) = result, owner != nil, self.owners[source.service] == owner else { return }
                self.update { source.apply(&$0, reply.arguments.first?.vardictValue ?? [:]) }
            }
        }
    }

    private func update(_ change: (inout Readings) -> Void) {
        change(&readings)
        let new = Self.conditions(from: readings)
        guard new != conditions else { return }
        conditions = new
        onChange(new)
    }

    /// The conditions the readings give (the contract's thresholds).
    static func conditions(from readings: Readings) -> MachineConditions {
        MachineConditions(
            online: readings.networkState.map { $0 == 70 },  // NM_STATE_CONNECTED_GLOBAL
            metered: readings.metered.map { $0 == 1 || $0 == 3 },  // yes, guess-yes
            onBattery: readings.onBattery,
            batteryLow: readings.warningLevel.map { $0 >= 3 },  // low, critical, action
            powerSaver: (readings.activeProfile ?? readings.legacyActiveProfile) == "power-saver",
            sleeping: readings.sleeping)
    }
}
