/// The figures issue 5 asks for, each with its floor, ratio and target.
enum Figure: Int, CaseIterable {
    case roundTrip, throughput, registerOne, registerMany, restore, restoreMemory, restoreNewBoot, restoreDeparted
    case dueLateness, idleSwitches, releaseWakeUps, releaseTime
    case dayWakeUps, dayAgainstSystemd, dayOutOfWindow, dayAdaptiveFetches

    var label: String {
        switch self {
        case .roundTrip: "GetStatus round trip (median)"
        case .throughput: "GetStatus throughput, 64 in flight"
        case .registerOne: "RegisterTask durable/s, 1 client"
        case .registerMany: "RegisterTask durable/s, 16 clients"
        case .restore: "restore: start until name owned"
        case .restoreMemory: "restore: peak RSS (VmHWM)"
        case .restoreNewBoot: "restore after a new boot"
        case .restoreDeparted: "restore, bound apps departed"
        case .dueLateness: "due together: p99 FetchRequested lateness"
        case .idleSwitches: "idle: daemon context switches"
        case .releaseWakeUps: "waiting tasks released: wake-ups"
        case .releaseTime: "waiting tasks released: last FetchRequested"
        case .dayWakeUps: "simulated day: wake-ups per fetch"
        case .dayAgainstSystemd: "simulated day: wake-ups vs systemd"
        case .dayOutOfWindow: "simulated day: fetches out of window"
        case .dayAdaptiveFetches: "simulated day: fetches, adaptive"
        }
    }

    /// The target from issue 5, applied to the ratio where there is a floor
    /// to divide by, else to the figure itself.
    var target: Target {
        switch self {
        case .roundTrip: .atMost(1.08, "≤ 1.08")
        case .throughput: .atLeast(0.92, "≥ 0.92")
        case .registerOne: .atLeast(0.5, "≥ 0.5")
        case .registerMany: .atLeast(2.0, "≥ 2.0")
        case .restore, .restoreNewBoot, .restoreDeparted: .atMost(1.0, "≤ 1.0 s")
        case .restoreMemory: .atMost(96, "≤ 96 MiB")
        case .dueLateness: .atMost(50, "≤ 50 ms")
        case .idleSwitches: .atMost(2, "0 (≤ 2)")
        case .releaseWakeUps: .atMost(1, "1")
        // No target was set: the ratio is reported (the daemon's time
        // includes the change reaching it and one durable commit).
        case .releaseTime: .atMost(.infinity, "(reported)")
        case .dayWakeUps: .atMost(1.0 / 3.0, "≤ 0.33")
        case .dayAgainstSystemd: .atMost(0.999, "< 1")
        case .dayOutOfWindow: .atMost(0, "0")
        case .dayAdaptiveFetches: .atMost(.infinity, "(reported)")
        }
    }
}

enum Target {
    case atMost(Double, String)
    case atLeast(Double, String)

    var text: String {
        switch self {
        case .atMost(_, let text), .atLeast(_, let text): text
        }
    }

    func isMet(by value: Double) -> Bool {
        switch self {
        case .atMost(let limit, _): value <= limit
        case .atLeast(let limit, _): value >= limit
        }
    }
}

/// One measured figure.
struct Measurement {
    var measured: String
    var floor: String = "—"
    var ratio: Double? = nil
    /// What the target is checked against: the ratio, or the figure in the target's unit.
    var checked: Double
}

/// Collects the figures and prints the table.
final class Report {
    private var results: [Figure: Measurement] = [:]
    private var failures: [Figure: String] = [:]
    private var skipped: Set<Figure> = []
    private(set) var notes: [String] = []

    func record(_ figure: Figure, _ result: Measurement) { results[figure] = result }
    func fail(_ figure: Figure, _ reason: String) { failures[figure] = failures[figure] ?? reason }
    func skip(_ figure: Figure) { skipped.insert(figure) }
    func note(_ text: String) { notes.append(text) }

    /// Every figure that was asked for was measured.
    var everythingMeasured: Bool { Figure.allCases.allSatisfy { results[$0] != nil || skipped.contains($0) } }

    var missed: [Figure] {
        Figure.allCases.filter { figure in results[figure].map { !figure.target.isMet(by: $0.checked) } ?? false }
    }

    func render() -> String {
        var lines: [String] = []
        let header = ["figure", "measured", "floor", "ratio", "target", ""]
        var table = [header]
        for figure in Figure.allCases {
            if let result = results[figure] {
                let met = figure.target.isMet(by: result.checked)
                table.append([
                    figure.label, result.measured, result.floor, result.ratio.map { Format.fixed($0, 2) } ?? "—",
                    figure.target.text, met ? "ok" : "MISSED",
                ])
            } else if skipped.contains(figure) {
                table.append([figure.label, "skipped", "—", "—", figure.target.text, ""])
            } else {
                table.append([figure.label, "n/a", "—", "—", figure.target.text, "NOT MEASURED"])
            }
        }
        let widths = (0..<header.count).map { column in table.map { $0[column].count }.max() ?? 0 }
        for (index, row) in table.enumerated() {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padded(to: widths[column])
            }
            lines.append(cells.joined(separator: "  ").trimmingTrailingSpaces)
            if index == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        for figure in Figure.allCases {
            if let reason = failures[figure] { lines.append("NOT MEASURED \(figure.label): \(reason)") }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    var trimmingTrailingSpaces: String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }

    func padded(to length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
