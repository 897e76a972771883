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
        .requiresNetwork: Row(signature: "b") { options, value in options.constraints.network = value.boolValue ?? false },
        .requiresUnmeteredNetwork: Row(signature: "b") { options, value in
            options.constraints.unmeteredNetwork = value.boolValue ?? false
        },
        .requiresExternalPower: Row(signature: "b") { options, value in options.constraints.externalPower = value.boolValue ?? false },
        .requiresBatteryNotLow: Row(signature: "b") { options, value in options.constraints.batteryNotLow = value.boolValue ?? false },
        .adaptive: Row(signature: "b") { options, value in options.adaptive = value.boolValue ?? true },
        // The value is checked in parse (an unknown policy is refused there).
        .launch: Row(signature: "s") { options, value in options.launch = LaunchPolicy(rawValue: value.stringValue ?? "") ?? .activate },
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
                // The list of known keys only where the message stays short.
                let known = key.utf8.count <= 64 ? "known options: " + table.keys.sorted().joined(separator: ", ") : "see org.bgfetch.BackgroundFetch1(5)"
                throw .invalidArgs("unknown option '\(CallerText.shown(key))' (\(known))")
            }
            guard seen.insert(key).inserted else { throw .invalidArgs("option '\(CallerText.shown(key))' is given twice") }
            guard inner.signature == row.signature else {
                throw .invalidArgs("option '\(CallerText.shown(key))' must be of type '\(row.signature)', not '\(inner.signature)'")
            }
            if key == RegisterOptionKey.launch.rawValue, LaunchPolicy(rawValue: inner.stringValue ?? "") == nil {
                let known = LaunchPolicy.allCases.map(\.rawValue).joined(separator: ", ")
                throw .invalidArgs("option 'launch' is '\(CallerText.shown(inner.stringValue ?? ""))'; it must be one of: \(known)")
            }
            row.apply(&options, inner)
        }
        return options
    }
}
