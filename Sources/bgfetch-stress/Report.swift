import Foundation
import Synchronization
import TestKit

/// What one part found: its checks, its figures, and a progress line now and then.
final class PartReport: Sendable {
    let name: String
    private struct State {
        var checks: [(what: String, passed: Bool, detail: String)] = []
        var figures: [(key: String, value: String)] = []
        var skipped: String?
        var attached = ""
    }
    private let state = Mutex(State())

    init(_ name: String) { self.name = name }

    /// Prints a progress line at once.
    func progress(_ text: String) { TestKit.progress("[\(name)] \(text)") }

    /// Records a check; a failed one is also printed at once.
    @discardableResult
    func check(_ passed: Bool, _ what: String, _ detail: @autoclosure () -> String = "") -> Bool {
        let text = passed ? "" : detail()
        state.withLock { $0.checks.append((what, passed, text)) }
        if !passed { progress("FAILED: \(what)\(text.isEmpty ? "" : ": " + text)") }
        return passed
    }

    /// Records a figure for the summary (a later one with the same key replaces it).
    func figure(_ key: String, _ value: String) {
        state.withLock { s in
            if let index = s.figures.firstIndex(where: { $0.key == key }) {
                s.figures[index].value = value
            } else {
                s.figures.append((key, value))
            }
        }
    }

    /// Adds lines (a sub-process's summary) to this part's summary.
    func attach(_ text: String) {
        state.withLock { $0.attached += text }
    }

    func skip(_ reason: String) {
        state.withLock { $0.skipped = reason }
        progress("skipped: \(reason)")
    }

    var passed: Bool { state.withLock { $0.checks.allSatisfy(\.passed) } }
    var isSkipped: Bool { state.withLock { $0.skipped != nil } }

    /// The part's lines of the final summary.
    var summary: String {
        state.withLock { s in
            if let reason = s.skipped { return "\(name): SKIPPED (\(reason))\n" }
            let failed = s.checks.filter { !$0.passed }
            var text = "\(name): \(failed.isEmpty ? "PASS" : "FAIL") (\(s.checks.count - failed.count)/\(s.checks.count) checks)\n"
            for figure in s.figures { text += "  \(figure.key): \(figure.value)\n" }
            for check in failed { text += "  FAILED \(check.what)\(check.detail.isEmpty ? "" : ": " + check.detail)\n" }
            for line in s.attached.split(separator: "\n") { text += "  | \(line)\n" }
            return text
        }
    }
}

/// A thread-safe counter of named outcomes, with a few examples of each.
final class Tally: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    private let examples = Mutex<[String: [String]]>([:])

    func add(_ key: String, example: @autoclosure () -> String? = nil) {
        counts.withLock { $0[key, default: 0] += 1 }
        if let text = example() {
            examples.withLock { e in if e[key, default: []].count < 3 { e[key, default: []].append(text) } }
        }
    }

    func merge(_ other: Tally) {
        let theirs = other.all
        counts.withLock { for (key, count) in theirs { $0[key, default: 0] += count } }
    }

    subscript(key: String) -> Int { counts.withLock { $0[key] ?? 0 } }
    var all: [String: Int] { counts.withLock { $0 } }
    func examples(_ key: String) -> [String] { examples.withLock { $0[key] ?? [] } }
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }

    var description: String {
        all.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
