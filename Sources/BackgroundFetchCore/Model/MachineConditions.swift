/// What the machine offers now, as the system services report it: the
/// input of the constraint rules, a plain value so they are tested without
/// any bus.
///
/// `nil` means the service that reports it is not on the system bus: the
/// constraint then counts as met.
public struct MachineConditions: Sendable, Equatable {
    /// NetworkManager's `State` is 70 (`NM_STATE_CONNECTED_GLOBAL`).
    public var online: Bool?
    /// NetworkManager's `Metered` is 1 (yes) or 3 (guess-yes).
    public var metered: Bool?
    /// UPower's `OnBattery`.
    public var onBattery: Bool?
    /// UPower's display device `WarningLevel` is 3 or more (low, critical, action).
    public var batteryLow: Bool?
    /// power-profiles-daemon's `ActiveProfile` is `power-saver`.
    public var powerSaver = false
    /// Between logind's `PrepareForSleep(true)` and `PrepareForSleep(false)`.
    public var sleeping = false

    public init(
        online: Bool? = nil, metered: Bool? = nil, onBattery: Bool? = nil, batteryLow: Bool? = nil, powerSaver: Bool = false,
        sleeping: Bool = false
    ) {
        self.online = online
        self.metered = metered
        self.onBattery = onBattery
        self.batteryLow = batteryLow
        self.powerSaver = powerSaver
        self.sleeping = sleeping
    }

    /// Nothing known: every constraint counts as met.
    public static let unknown = MachineConditions()

    /// Why a due fetch with `constraints` must wait now, or nil if it may go:
    /// sleep first, then the task's own constraints in the order the options
    /// list them, then power saving.
    public func holdBack(_ constraints: TaskOptions.Constraints, deferInPowerSaver: Bool) -> TaskReason? {
        if sleeping { return .suspended }
        if constraints.network || constraints.unmeteredNetwork, online == false { return .network }
        if constraints.unmeteredNetwork, metered == true { return .unmeteredNetwork }
        if constraints.externalPower, onBattery == true { return .externalPower }
        if constraints.batteryNotLow, batteryLow == true { return .batteryLow }
        if deferInPowerSaver, powerSaver { return .powerSaver }
        return nil
    }
}
