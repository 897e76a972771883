import BackgroundFetchContract
import DBus

/// Calls to the service and to the bus driver with their errors turned into
/// ``BackgroundFetchError``.
enum ServiceCall {
    /// Calls a method of the service's object and returns its out arguments.
    static func call(
        _ connection: BusConnection, on bus: BackgroundFetchClient.Bus, interface: String = Wire.appInterface, _ member: String,
        _ arguments: [DBusValue] = []
    ) async throws(BackgroundFetchError) -> [DBusValue] {
        try await call(connection, on: bus, destination: Wire.busName, path: Wire.objectPath, interface: interface, member, arguments)
    }

    /// Calls a method of the bus driver (`org.freedesktop.DBus`).
    static func callBus(
        _ connection: BusConnection, on bus: BackgroundFetchClient.Bus, _ member: String, _ arguments: [DBusValue] = []
    ) async throws(BackgroundFetchError) -> [DBusValue] {
        try await call(
            connection, on: bus, destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus", member, arguments)
    }

    /// Reads every property of the app interface.
    static func properties(_ connection: BusConnection, on bus: BackgroundFetchClient.Bus) async throws(BackgroundFetchError)
        -> [String: DBusValue]
    {
        let reply = try await call(
            connection, on: bus, destination: Wire.busName, path: Wire.objectPath, interface: "org.freedesktop.DBus.Properties",
            "GetAll", [.string(Wire.appInterface)])
        guard let properties = reply.first?.vardictValue else { throw .badReply("GetAll") }
        return properties
    }

    private static func call(
        _ connection: BusConnection, on bus: BackgroundFetchClient.Bus, destination: String, path: String, interface: String,
        _ member: String, _ arguments: [DBusValue]
    ) async throws(BackgroundFetchError) -> [DBusValue] {
        do throws(DBusError) {
            let message = try Message.methodCall(
                destination: destination, path: path, interface: interface, member: member, arguments)
            return try await connection.call(message).arguments
        } catch {
            throw BackgroundFetchError(error, on: bus)
        }
    }

    /// Opens a connection, with the failure said in the library's terms.
    static func connect(_ bus: BackgroundFetchClient.Bus, threadName: String) throws(BackgroundFetchError) -> BusConnection {
        do throws(DBusError) {
            return try BusConnection.connect(bus.busAddress, threadName: threadName)
        } catch {
            throw BackgroundFetchError(.busUnavailable, "cannot connect to \(bus): \(error.message)", dbusErrorName: error.name)
        }
    }
}
