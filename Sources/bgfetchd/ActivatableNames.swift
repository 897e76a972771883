import BackgroundFetchCore
import DBus

/// The bus's activatable names, refreshed in the background when older than a
/// few seconds: asking never blocks the connection's thread. Lives on it.
final class ActivatableNames: @unchecked Sendable {
    private let connection: BusConnection
    private var names: Set<String> = []
    private var fetchedAt: Int64?
    private var refreshing = false

    /// Reads the list once, blocking: at start, before anything is served.
    init(connection: BusConnection) {
        self.connection = connection
        let listed = (try? connection.callBus("ListActivatableNames").first?.arrayValue) ?? []
        names = Set(listed.compactMap(\.stringValue))
        fetchedAt = SystemClock().now()
    }

    func contains(_ name: String) -> Bool {
        let now = SystemClock().now()
        if !refreshing, fetchedAt.map({ now - $0 > 5_000_000 || now < $0 }) ?? true {
            refresh()
        }
        return names.contains(name)
    }

    private func refresh() {
        refreshing = true
        connection.callBus("ListActivatableNames") { [self] result in
            refreshing = false
            fetchedAt = SystemClock().now()
            if case .success(let arguments) = result {
                names = Set((arguments.first?.arrayValue ?? []).compactMap(\.stringValue))
            }
        }
    }
}
