import DBus
import Foundation
import Synchronization
import TestKit

/// A private bus that the daemon under test takes for the system bus, with
/// python3-dbusmock playing NetworkManager, UPower, power-profiles-daemon
/// and logind on it, each started and stopped when a test says (so a
/// service can appear and vanish mid-test) and driven through dbusmock's
/// own interface and `org.freedesktop.DBus.Properties.Set`, which emits
/// `PropertiesChanged` as the real services do.
final class MockSystemBus: Sendable {
    /// dbusmock's templates, by the service they play.
    enum Service: String, Sendable, CaseIterable {
        case networkManager = "networkmanager"
        case upower = "upower"
        case powerProfiles = "power_profiles_daemon"
        case logind = "logind"

        var busName: String {
            switch self {
            case .networkManager: "org.freedesktop.NetworkManager"
            case .upower: "org.freedesktop.UPower"
            case .powerProfiles: "net.hadess.PowerProfiles"  // the template's (older) name
            case .logind: "org.freedesktop.login1"
            }
        }
    }

    let bus: TestBus
    let control: BusConnection
    private let mocks = Mutex<[Service: BackgroundProcess]>([:])

    init() throws {
        bus = try TestBus()
        control = try BusConnection.connect(.address(bus.address), threadName: "mock-control")
    }

    deinit { control.close() }

    /// What a daemon needs in its environment to take this bus for the system bus.
    var daemonEnvironment: [String: String] { ["DBUS_SYSTEM_BUS_ADDRESS": bus.address] }

    /// A running bgfetchd serving `served` (a floor of one second), with this bus as its system bus.
    func daemon(serving served: TestBus) throws -> DaemonProcess {
        let daemon = try DaemonProcess(bus: served, arguments: ["--minimum-interval-floor", "1"])
        daemon.environment = daemonEnvironment
        try daemon.start()
        return daemon
    }

    /// Starts `service`'s template and waits until it owns its name.
    func start(_ service: Service) async throws {
        let process = try BackgroundProcess(
            "/usr/bin/python3", ["-m", "dbusmock", "--system", "--template", service.rawValue],
            environment: ["DBUS_SYSTEM_BUS_ADDRESS": bus.address])
        mocks.withLock { $0[service] = process }
        try await eventually("\(service.busName) on the mock system bus") {
            guard process.isRunning else { throw HarnessError("dbusmock \(service.rawValue) exited: \(process.stderr)") }
            return owns(service) ? true : nil
        }
    }

    /// Starts NetworkManager's template and takes the machine offline.
    func startOfflineNetworkManager() async throws {
        try await start(.networkManager)
        try setNetworkState(20)  // disconnected
    }

    /// Stops `service` and waits until its name is gone.
    func stop(_ service: Service) async throws {
        let process = mocks.withLock { $0.removeValue(forKey: service) }
        process?.send(SIGTERM)
        try await eventually("\(service.busName) gone from the mock system bus") { owns(service) ? nil : true }
    }

    func owns(_ service: Service) -> Bool {
        (try? control.callBus("NameHasOwner", [.string(service.busName)]).first?.boolValue) ?? false
    }

    @discardableResult
    func call(
        _ service: Service, path: String, interface: String, _ member: String, _ arguments: [DBusValue] = []
    ) throws -> [DBusValue] {
        let message = try Message.methodCall(destination: service.busName, path: path, interface: interface, member: member, arguments)
        return try control.callBlocking(message, timeoutMilliseconds: 10_000).arguments
    }

    /// Sets a property the way the service would change it: the mock emits
    /// `PropertiesChanged`.
    func set(_ service: Service, path: String, interface: String, _ name: String, _ value: DBusValue) throws {
        try call(service, path: path, interface: "org.freedesktop.DBus.Properties", "Set", [.string(interface), .string(name), .variant(value)])
    }

    // MARK: What the tests flip

    /// NetworkManager's global state: 70 is online, 20 disconnected.
    func setNetworkState(_ state: UInt32) throws {
        try call(.networkManager, path: "/org/freedesktop", interface: "org.freedesktop.DBus.Mock", "SetGlobalConnectionState", [.uint32(state)])
    }

    /// NetworkManager's `Metered` (1 yes, 2 no, 3 guess-yes, 4 guess-no), a
    /// property the template lacks: added, then set.
    func setMetered(_ metered: UInt32) throws {
        let path = "/org/freedesktop/NetworkManager"
        if (try? call(.networkManager, path: path, interface: "org.freedesktop.DBus.Properties", "Get",
                      [.string("org.freedesktop.NetworkManager"), .string("Metered")])) == nil {
            try call(.networkManager, path: path, interface: "org.freedesktop.DBus.Mock", "AddProperty",
                     [.string("org.freedesktop.NetworkManager"), .string("Metered"), .variant(.uint32(0))])
        }
        try set(.networkManager, path: path, interface: "org.freedesktop.NetworkManager", "Metered", .uint32(metered))
    }

    func setOnBattery(_ onBattery: Bool) throws {
        try set(.upower, path: "/org/freedesktop/UPower", interface: "org.freedesktop.UPower", "OnBattery", .bool(onBattery))
    }

    /// The display device's `WarningLevel` (1 none, 3 low, 4 critical).
    func setWarningLevel(_ level: UInt32) throws {
        try set(.upower, path: "/org/freedesktop/UPower/devices/DisplayDevice", interface: "org.freedesktop.UPower.Device", "WarningLevel", .uint32(level))
    }

    func setActiveProfile(_ profile: String) throws {
        try set(.powerProfiles, path: "/net/hadess/PowerProfiles", interface: "net.hadess.PowerProfiles", "ActiveProfile", .string(profile))
    }

    /// logind's `PrepareForSleep(sleeping)`.
    func prepareForSleep(_ sleeping: Bool) throws {
        try call(.logind, path: "/org/freedesktop/login1", interface: "org.freedesktop.DBus.Mock", "EmitSignal",
                 [.string("org.freedesktop.login1.Manager"), .string("PrepareForSleep"), .string("b"), .array(element: "v", [.variant(.bool(sleeping))])])
    }

    /// The inhibitors logind holds: (what, who, why, mode) each.
    func inhibitors() throws -> [[String]] {
        let reply = try call(.logind, path: "/org/freedesktop/login1", interface: "org.freedesktop.login1.Manager", "ListInhibitors")
        guard case .array(_, let rows) = reply.first else { return [] }
        return rows.map { row in
            guard case .structure(let fields) = row else { return [] }
            return fields.prefix(4).map { $0.stringValue ?? "" }
        }
    }
}
