import ArgumentParser
import BackgroundFetch

/// Which bus to find the service on; shared by every subcommand.
struct BusOptions: ParsableArguments {
    @Flag(help: "Use the service on the user's session bus (the default).")
    var user = false

    @Flag(help: "Use the service on the system bus.")
    var system = false

    @Option(help: ArgumentHelp("Use the service on the bus at this D-Bus address.", valueName: "address"))
    var address: String?

    func validate() throws {
        guard [user, system, address != nil].filter({ $0 }).count <= 1 else {
            throw ValidationError("--user, --system and --address exclude each other")
        }
    }

    var bus: BackgroundFetchClient.Bus {
        if let address { return .address(address) }
        return system ? .system : .session
    }

    /// A short name for JSON output.
    var busName: String { address != nil ? "address" : system ? "system" : "session" }

    /// Connects a manager, or fails with the "not reachable" status.
    func connect() throws(CtlFailure) -> BackgroundFetchManager {
        do throws(BackgroundFetchError) {
            return try BackgroundFetchManager(bus: bus)
        } catch {
            throw CtlFailure(error)
        }
    }
}
