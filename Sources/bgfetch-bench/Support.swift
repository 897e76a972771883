import Foundation
import Synchronization

/// A value handed from a connection's thread to the thread that waits for it.
final class Handoff<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    func put(_ newValue: Value) {
        value.withLock { $0 = newValue }
        ready.signal()
    }

    func take() -> Value {
        ready.wait()
        return value.withLock { $0! }
    }
}

/// Number formatting for the table.
enum Format {
    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

    /// 12,345 — thousands separated, as the issue writes them.
    static func count(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, char) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(char)
        }
        return (value < 0 ? "-" : "") + out
    }

    static func rate(_ perSecond: Double) -> String { count(Int(perSecond.rounded())) + "/s" }
    static func micros(_ value: Double) -> String { fixed(value, 1) + " µs" }
    static func millis(_ value: Double) -> String { fixed(value, value < 10 ? 2 : 1) + " ms" }
    static func mebibytes(_ kib: Int) -> String { fixed(Double(kib) / 1024, 1) + " MiB" }
}
