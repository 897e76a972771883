/// The options an app registers a task with.
public struct TaskOptions: Sendable, Equatable {
    public static let defaultMinimumInterval: UInt32 = 600
    public static let intervalRange: ClosedRange<UInt32> = 1...604_800

    /// Inexact seconds between fetches.
    public var minimumInterval: UInt32
    /// Unregister the task when the registering connection leaves the bus.
    public var stopOnTerminate: Bool
    /// Resume by itself after a new boot.
    public var startOnBoot: Bool
    /// What the machine must offer before a due fetch is sent.
    public var constraints: Constraints
    /// Let NoData answers stretch the interval.
    public var adaptive: Bool
    /// Whether a due fetch may start the app when it is not running.
    public var launch: LaunchPolicy

    /// The machine conditions a task waits for (`requires*` options).
    public struct Constraints: Sendable, Equatable {
        public var network = false
        public var unmeteredNetwork = false
        public var externalPower = false
        public var batteryNotLow = false

        public init(network: Bool = false, unmeteredNetwork: Bool = false, externalPower: Bool = false, batteryNotLow: Bool = false) {
            self.network = network
            self.unmeteredNetwork = unmeteredNetwork
            self.externalPower = externalPower
            self.batteryNotLow = batteryNotLow
        }

        public static let none = Constraints()
    }

    public init(
        minimumInterval: UInt32 = TaskOptions.defaultMinimumInterval, stopOnTerminate: Bool = true,
        startOnBoot: Bool = false, constraints: Constraints = .none, adaptive: Bool = true, launch: LaunchPolicy = .activate
    ) {
        self.minimumInterval = minimumInterval
        self.stopOnTerminate = stopOnTerminate
        self.startOnBoot = startOnBoot
        self.constraints = constraints
        self.adaptive = adaptive
        self.launch = launch
    }

    /// Checks the rules that span fields and ranges.
    public func validate() throws(FetchError) {
        guard Self.intervalRange.contains(minimumInterval) else {
            throw .invalidArgs(
                "minimumInterval \(minimumInterval) is outside \(Self.intervalRange.lowerBound)–\(Self.intervalRange.upperBound) seconds")
        }
        if startOnBoot && stopOnTerminate {
            throw .invalidArgs("startOnBoot true requires stopOnTerminate false")
        }
    }
}

/// Task names (and app ids given to the manager) must be short and plain.
public enum TaskName {
    public static let maximumLength = 255

    public static func validate(_ name: String, what: String = "task name") throws(FetchError) {
        guard !name.isEmpty else { throw .invalidArgs("\(what) is empty") }
        guard name.utf8.count <= maximumLength else {
            throw .invalidArgs("\(what) is \(name.utf8.count) bytes long; at most \(maximumLength) are allowed")
        }
        if let bad = name.unicodeScalars.first(where: { !isAllowed($0) }) {
            let shown = bad.isASCII && bad.value >= 0x20 && bad.value < 0x7f ? "'\(Character(bad))'" : "U+\(String(bad.value, radix: 16, uppercase: true))"
            throw .invalidArgs("\(what) '\(CallerText.shown(name))' contains \(shown); only A-Z a-z 0-9 _ . - : are allowed")
        }
    }

    private static func isAllowed(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "A"..."Z", "a"..."z", "0"..."9", "_", ".", "-", ":": true
        default: false
        }
    }
}
