import BackgroundFetchCore
import DBus

/// The bus's activatable names, refreshed in the background when older than a
/// few seconds: asking never blocks the daemon's loop.
@DaemonActor final class ActivatableNames {
    private let connection: BusConnection
    private let clock: WallClock
    private var names: Set<String> = []
    private var fetchedAt: Int64?
    private var refreshing = false
    /// How long a list is trusted, in microseconds.
    static let freshFor: Int64 = 5_000_000

    init(connection: BusConnection, clock: WallClock) {
        self.connection = connection
        self.clock = clock
    }

    /// Reads the list once, at start, before anything is served.
    func load() async {
        names = Self.names(in: (try? await connection.callBus("ListActivatableNames", [])) ?? [])
        fetchedAt = clock.now()
    }

    func contains(_ name: String) -> Bool {
        let now = clock.now()
        if !refreshing, fetchedAt.map({ now - $0 > Self.freshFor || now < $0 }) ?? true {
            refresh()
        }
        return names.contains(name)
    }

    private func refresh() {
        refreshing = true
        connection.callBus("ListActivatableNames") { result in
            DaemonActor.assumeIsolated {
                self.refreshing = false
                self.fetchedAt = self.clock.now()
                if case .success(let arguments) = result { self.names = Self.names(in: arguments) }
            }
        }
    }

    /// The names in `ListActivatableNames`' reply.
    private static func names(in reply: [DBusValue]) -> Set<String> {
        Set((reply.first?.arrayValue ?? []).compactMap(\.stringValue))
    }
}
