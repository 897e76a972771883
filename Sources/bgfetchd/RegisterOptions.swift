import BackgroundFetchCore
import DBus

/// The `RegisterTask` options, one row per key: its D-Bus type and where it goes.
enum RegisterOptions {
    private struct Row: Sendable {
        let signature: String
        let apply: @Sendable (inout TaskOptions, DBusValue) -> Void
    }

    private static let rows: [RegisterOptionKey: Row] = [
        .minimumInterval: Row(signature: "u") { options, value in options.minimumInterval = value.uint32Value ?? 0 },
        .stopOnTerminate: Row(signature: "b") { options, value in options.stopOnTerminate = value.boolValue ?? true },
        .startOnBoot: Row(signature: "b") { options, value in options.startOnBoot = value.boolValue ?? false },
    ]
    private static let table = Dictionary(uniqueKeysWithValues: rows.map { ($0.key.rawValue, $0.value) })

    /// Reads an `a{sv}` into options; refuses unknown keys and wrong types.
    static func parse(_ value: DBusValue) throws(FetchError) -> TaskOptions {
        guard case .array(_, let entries) = value else { throw .invalidArgs("options must be a{sv}") }
        var options = TaskOptions()
        var seen: Set<String> = []
        for entry in entries {
            guard case .dictEntry(.string(let key), .variant(let inner)) = entry else {
                throw .invalidArgs("options must be a{sv}")
            }
            guard let row = table[key] else {
                let known = table.keys.sorted().joined(separator: ", ")
                throw .invalidArgs("unknown option '\(CallerText.shown(key))' (known options: \(known))")
            }
            guard seen.insert(key).inserted else { throw .invalidArgs("option '\(CallerText.shown(key))' is given twice") }
            guard inner.signature == row.signature else {
                throw .invalidArgs("option '\(CallerText.shown(key))' must be of type '\(row.signature)', not '\(inner.signature)'")
            }
            row.apply(&options, inner)
        }
        return options
    }
}
