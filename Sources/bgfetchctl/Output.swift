import BackgroundFetch
import Foundation

/// Text for people and JSON for scripts.
enum Output {
    static func line(_ text: String) {
        print(text)
        fflush(nil)
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Pretty-printed JSON with sorted keys.
    static func json(_ object: Any) -> String {
        if let array = object as? [Any], array.isEmpty { return "[]" }
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// One-line JSON, for a stream of lines.
    static func jsonLine(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Columns separated by two spaces, the last one not padded.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([render(header)] + rows.map(render)).joined(separator: "\n")
    }

    // MARK: Values

    /// `90` → `1m 30s`; `600` → `10m`; `86400` → `1d`.
    static func duration(seconds: UInt64) -> String {
        if seconds == 0 { return "0s" }
        let units: [(UInt64, String)] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")]
        var rest = seconds
        var parts: [String] = []
        for (size, name) in units where rest >= size {
            parts.append("\(rest / size)\(name)")
            rest %= size
            if parts.count == 2 { break }
        }
        return parts.joined(separator: " ")
    }

    static func seconds(_ duration: Duration) -> UInt64 { UInt64(max(0, duration.components.seconds)) }

    private static let timeFormat: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter
    }()

    /// A local time; `-` for none.
    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return timeFormat.string(from: date)
    }

    /// A local time with how far it is from now: `2025-11-26 10:00:00 (in 9m 58s)`.
    static func time(_ date: Date?, relativeTo now: Date) -> String {
        guard let date else { return "-" }
        let delta = date.timeIntervalSince(now)
        let amount = duration(seconds: UInt64(abs(delta).rounded()))
        return time(date) + (delta >= 0 ? " (in \(amount))" : " (\(amount) ago)")
    }

    static func microseconds(_ date: Date?) -> UInt64 {
        guard let date else { return 0 }
        return UInt64(max(0, (date.timeIntervalSince1970 * 1_000_000).rounded()))
    }

    static func date(microseconds: UInt64) -> Date? {
        microseconds == 0 ? nil : Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    static func result(_ result: BackgroundFetchResult?) -> String { result?.description ?? "-" }

    // MARK: Tasks

    /// A task as a JSON object; the same keys in `list` and `status`.
    static func json(_ task: BackgroundFetchManager.ManagedTask) -> [String: Any] {
        let info = task.info
        return [
            "app": task.appID,
            "uid": task.uid,
            "task": info.name,
            "minimumInterval": seconds(info.minimumInterval),
            "effectiveInterval": seconds(info.effectiveInterval),
            "stopOnTerminate": info.stopOnTerminate,
            "startOnBoot": info.startOnBoot,
            "state": info.state.rawValue,
            "nextFetch": microseconds(info.nextFetch),
            "lastFetch": microseconds(info.lastFetch),
            "lastResult": info.lastResult?.rawValue ?? 0,
            "lastResultName": info.lastResult?.description ?? NSNull(),
            "fetchCount": info.fetchCount,
            "failureCount": info.failureCount,
            "reason": info.reason.rawValue,
            "requiresNetwork": info.constraints.contains(.network),
            "requiresUnmeteredNetwork": info.constraints.contains(.unmeteredNetwork),
            "requiresExternalPower": info.constraints.contains(.externalPower),
            "requiresBatteryNotLow": info.constraints.contains(.batteryNotLow),
            "adaptive": info.adaptive,
            "launch": info.launch.rawValue,
            "consecutiveFailures": info.consecutiveFailures,
            "consecutiveNoData": info.consecutiveNoData,
        ]
    }

    /// The `systemctl list-timers`-like table of tasks.
    static func taskTable(_ tasks: [BackgroundFetchManager.ManagedTask], showUID: Bool, now: Date = Date()) -> String {
        let header = (showUID ? ["UID"] : []) + ["APP", "TASK", "INTERVAL", "NEXT", "LAST", "RESULT", "STATE", "REASON"]
        let rows = tasks.map { task -> [String] in
            let info = task.info
            var interval = duration(seconds: seconds(info.effectiveInterval))
            if info.effectiveInterval != info.minimumInterval {
                interval += " (asked \(duration(seconds: seconds(info.minimumInterval))))"
            }
            return (showUID ? ["\(task.uid)"] : []) + [
                task.appID, info.name, interval, time(info.nextFetch, relativeTo: now), time(info.lastFetch, relativeTo: now),
                result(info.lastResult), info.state.rawValue, info.reason.rawValue,
            ]
        }
        return table(header, rows)
    }
}
