import BackgroundFetchContract
import DBus

/// How a task is scheduled: the `RegisterTask` options, with Expo's defaults.
public struct BackgroundFetchOptions: Sendable, Hashable {
    /// Inexact time between fetches (default 10 minutes). The service uses the
    /// largest of this, the app's ``BackgroundFetchClient/setMinimumInterval(_:)``
    /// and the administrator's floor, and may fire up to 10 % late to batch
    /// wake-ups. It travels as whole seconds, rounded up; 1 s to 7 days.
    public var minimumInterval: Duration
    /// Unregister the task when this process leaves the bus (default true).
    public var stopOnTerminate: Bool
    /// Resume the task by itself after a reboot (default false); requires
    /// `stopOnTerminate` false.
    public var startOnBoot: Bool
    /// What the machine must offer before a due fetch is sent (default none):
    /// the fetch waits, and goes once as soon as it does.
    public var constraints: Constraints
    /// Let NoData answers stretch the interval (default true).
    public var adaptive: Bool
    /// Whether a due fetch may start the app when it is not running (default `.activate`).
    public var launch: Launch

    /// Conditions a task waits for, from NetworkManager and UPower.
    public struct Constraints: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Online: NetworkManager says connected globally.
        public static let network = Constraints(rawValue: 1 << 0)
        /// Online on a network that is not metered.
        public static let unmeteredNetwork = Constraints(rawValue: 1 << 1)
        /// On mains power (UPower's `OnBattery` is false).
        public static let externalPower = Constraints(rawValue: 1 << 2)
        /// The battery is not at its low, critical or action level.
        public static let batteryNotLow = Constraints(rawValue: 1 << 3)

        /// Each option's `RegisterTask` key.
        static let keys: [(Constraints, RegisterOptionKey)] = [
            (.network, .requiresNetwork), (.unmeteredNetwork, .requiresUnmeteredNetwork),
            (.externalPower, .requiresExternalPower), (.batteryNotLow, .requiresBatteryNotLow),
        ]
    }

    /// Whether a due fetch may start the app (the `launch` option).
    public enum Launch: String, Sendable, Hashable, CaseIterable {
        /// By its desktop entry's `ActivateAction`, or by bus activation.
        case activate
        /// The fetch waits, pending, until the app registers the task again.
        case never
    }

    public init(
        minimumInterval: Duration = .seconds(600), stopOnTerminate: Bool = true, startOnBoot: Bool = false,
        constraints: Constraints = [], adaptive: Bool = true, launch: Launch = .activate
    ) {
        self.minimumInterval = minimumInterval
        self.stopOnTerminate = stopOnTerminate
        self.startOnBoot = startOnBoot
        self.constraints = constraints
        self.adaptive = adaptive
        self.launch = launch
    }

    /// The `a{sv}` of `RegisterTask`. The first three keys are always
    /// written; the later ones only when they differ from their defaults, so
    /// the options an older service knows still reach it.
    var dbusValue: DBusValue {
        var keyed: [RegisterOptionKey: DBusValue] = [
            .minimumInterval: .uint32(Self.wholeSeconds(minimumInterval)),
            .stopOnTerminate: .bool(stopOnTerminate),
            .startOnBoot: .bool(startOnBoot),
        ]
        for (constraint, key) in Constraints.keys where constraints.contains(constraint) { keyed[key] = .bool(true) }
        if !adaptive { keyed[.adaptive] = .bool(false) }
        if launch != .activate { keyed[.launch] = .string(launch.rawValue) }
        return .vardict(keyed: keyed)
    }

    /// A duration as the service's `u` seconds: rounded up, clamped to `UInt32`
    /// (the service refuses what is out of its range with `invalidArgs`).
    static func wholeSeconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let rounded = attoseconds > 0 ? seconds &+ 1 : seconds
        return UInt32(clamping: rounded)
    }
}
