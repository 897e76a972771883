import BackgroundFetchCore
import DBus

extension TaskInfo {
    /// The info dictionary of `GetRegisteredTasks` and `ListTasks`.
    func vardict(includingUID: Bool = false) -> DBusValue {
        var info: [TaskInfoKey: DBusValue] = [
            .minimumInterval: .uint32(options.minimumInterval),
            .effectiveInterval: .uint32(effectiveInterval),
            .stopOnTerminate: .bool(options.stopOnTerminate),
            .startOnBoot: .bool(options.startOnBoot),
            .state: .string(state.rawValue),
            .nextFetch: .uint64(UInt64(max(0, nextFetch))),
            .lastFetch: .uint64(UInt64(max(0, lastFetch))),
            .lastResult: .uint32(lastResult?.rawValue ?? 0),
            .fetchCount: .uint64(fetchCount),
            .failureCount: .uint64(failureCount),
            .requiresNetwork: .bool(options.constraints.network),
            .requiresUnmeteredNetwork: .bool(options.constraints.unmeteredNetwork),
            .requiresExternalPower: .bool(options.constraints.externalPower),
            .requiresBatteryNotLow: .bool(options.constraints.batteryNotLow),
            .adaptive: .bool(options.adaptive),
            .launch: .string(options.launch.rawValue),
            .reason: .string(reason.rawValue),
            .consecutiveFailures: .uint32(consecutiveFailures),
            .consecutiveNoData: .uint32(consecutiveNoData),
        ]
        if includingUID { info[.uid] = .uint32(key.app.uid) }
        return .vardict(keyed: info)
    }
}
