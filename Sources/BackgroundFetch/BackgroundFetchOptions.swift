import BackgroundFetchContract
import DBus

/// How a task is scheduled: the `RegisterTask` options, with Expo's defaults.
public struct BackgroundFetchOptions: Sendable, Hashable {
    /// Inexact time between fetches (default 10 minutes). The service uses the
    /// largest of this, the app's ``BackgroundFetch/setMinimumInterval(_:)``
    /// and the administrator's floor, and may fire up to 10 % late to batch
    /// wake-ups. It travels as whole seconds, rounded up; 1 s to 7 days.
    public var minimumInterval: Duration
    /// Unregister the task when this process leaves the bus (default true).
    public var stopOnTerminate: Bool
    /// Resume the task by itself after a reboot (default false); requires
    /// `stopOnTerminate` false.
    public var startOnBoot: Bool

    public init(minimumInterval: Duration = .seconds(600), stopOnTerminate: Bool = true, startOnBoot: Bool = false) {
        self.minimumInterval = minimumInterval
        self.stopOnTerminate = stopOnTerminate
        self.startOnBoot = startOnBoot
    }

    /// The `a{sv}` of `RegisterTask`, every key written out.
    var dbusValue: DBusValue {
        .vardict(keyed: [
            RegisterOptionKey.minimumInterval: .uint32(Self.wholeSeconds(minimumInterval)),
            .stopOnTerminate: .bool(stopOnTerminate),
            .startOnBoot: .bool(startOnBoot),
        ])
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
