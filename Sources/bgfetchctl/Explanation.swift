import BackgroundFetch
import Foundation

/// One paragraph on when a task fires next and why, naming the unmet
/// condition and the service it comes from (`bgfetchctl status APP TASK`).
enum Explanation {
    static func of(_ task: BackgroundFetchManager.ManagedTask, now: Date = Date()) -> String {
        let info = task.info
        let subject = "Task '\(info.name)' of \(task.appID) (uid \(task.uid))"
        let next = Output.time(info.nextFetch, relativeTo: now)
        let interval = Output.duration(seconds: Output.seconds(info.effectiveInterval))
        let since = info.lastFetch == nil ? "its registration" : "its last fetch (\(Output.time(info.lastFetch, relativeTo: now)))"
        let waits = "It fell due at \(next) and waits"
        let thenFires = "It fires once as soon as that changes, with every other task released then."
        switch info.reason {
        case .interval:
            return "\(subject) is scheduled: it fires next at \(next), one effective interval (\(interval)) after \(since), "
                + "up to 10 % later to share a wake-up."
        case .backoff:
            return "\(subject) is backed off after \(info.consecutiveFailures) failed or expired fetch"
                + "\(info.consecutiveFailures == 1 ? "" : "es") in a row: it fires next at \(next). A successful answer "
                + "brings it back to its interval (\(interval))."
        case .noNewData:
            return "\(subject) had \(info.consecutiveNoData) NoData answers in a row, which stretch its interval: it fires "
                + "next at \(next). A NewData answer brings it back to \(interval)."
        case .batched:
            return "\(subject) was moved later, within its window, to share a wake-up: it fires next at \(next)."
        case .catchUp:
            return "\(subject) is overdue (it fell due at \(next), while bgfetchd was not running or the machine slept): "
                + "it fires once, soon."
        case .network:
            return "\(subject) requires the network. \(waits) because NetworkManager (org.freedesktop.NetworkManager on "
                + "the system bus) says the machine is not connected. \(thenFires)"
        case .unmeteredNetwork:
            return "\(subject) requires a network that is not metered. \(waits) because NetworkManager "
                + "(org.freedesktop.NetworkManager on the system bus) says the connection is metered. \(thenFires)"
        case .externalPower:
            return "\(subject) requires mains power. \(waits) because UPower (org.freedesktop.UPower on the system bus) "
                + "says the machine runs on battery. \(thenFires)"
        case .batteryLow:
            return "\(subject) requires a battery that is not low. \(waits) because UPower's display device "
                + "(org.freedesktop.UPower on the system bus) says the battery is low. \(thenFires)"
        case .powerSaver:
            return "\(subject) waits while the power profile is power-saver (power-profiles-daemon on the system bus). "
                + "It fell due at \(next). \(thenFires) The administrator can let fetches run in power-saver mode with "
                + "[Scheduling] DeferInPowerSaver=no in bgfetchd.conf."
        case .suspended:
            return "\(subject) fell due at \(next) while the machine prepared to sleep or slept (logind, "
                + "org.freedesktop.login1 on the system bus): it fires once after the machine resumes, constraints permitting."
        case .running:
            return "\(subject) is running: a fetch was sent at \(Output.time(info.lastFetch, relativeTo: now)) and the "
                + "app has not answered yet."
        case .pending:
            return "\(subject) is due, but no process of the app is connected to take the fetch: it is delivered when "
                + "the app registers the task again" + (info.launch == .never ? " (launch is never: the app is not started)." : ".")
        case .dormant:
            return "\(subject) is dormant since the machine rebooted (it was not registered with startOnBoot): it "
                + "resumes when the app registers it again."
        case .paused:
            return "\(subject) is paused: background fetch is switched off for the app (bgfetchctl enable turns it on) "
                + "or the administrator restricts it."
        default:
            return "\(subject) is \(info.state); its next fetch is at \(next) (reason: \(info.reason))."
        }
    }
}
