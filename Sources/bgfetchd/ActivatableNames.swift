import BackgroundFetchCore
import DBus

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
