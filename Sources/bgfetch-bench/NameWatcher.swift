import DBus
import Foundation
import Glibc
import TestKit
import Synchronization

/// Follows who owns the service's name, stamping each change as it arrives.
///
/// It stays connected for the whole run, and is quiet: the daemon sees no
/// traffic from it.
final class NameWatcher: Sendable {
    let connection: BusConnection
    private let state = OwnerState()

    private final class OwnerState: Sendable {
        let value = Mutex<(owner: String, changedAt: UInt64)>(("", 0))
    }

    init(bus: PrivateBus) throws(HarnessError) {
        connection = try bus.connect(thread: "bench-watcher")
        let state = self.state
        connection.setMessageHandler { message in
            guard message.kind == .signal, message.member == "NameOwnerChanged",
                message.interface == "org.freedesktop.DBus"
            else { return false }
            let arguments = message.arguments.map { $0.stringValue ?? "" }
            guard arguments.count == 3, arguments[0] == Service.name else { return false }
            let stamp = Clock.nanos()
            state.value.withLock { $0 = (arguments[2], stamp) }
            return true
        }
        do {
            try connection.addMatch(
                "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='\(Service.name)'"
            )
            let owner = try connection.callBus("NameHasOwner", [.string(Service.name)]).first?.boolValue ?? false
            if owner { throw HarnessError("\(Service.name) is already owned on the private bus") }
        } catch let error as HarnessError {
            throw error
        } catch {
            throw HarnessError("cannot watch the service's name: \(error)")
        }
    }

    /// Waits until the name has an owner (or none), as told by a change at
    /// or after `since` (monotonic ns) when given; returns when that change
    /// happened. Fails if `child` ends first or `timeout` passes.
    @discardableResult
    func wait(owned: Bool, since: UInt64 = 0, child: Child?, timeout: Double) throws(HarnessError) -> UInt64 {
        let start = Clock.nanos()
        while true {
            let (owner, changedAt) = state.value.withLock { $0 }
            if owner.isEmpty != owned && changedAt >= since { return changedAt }
            if owned, let child, !child.isRunning {
                throw HarnessError("bgfetchd exited with \(child.exitCode ?? -1) before owning its name")
            }
            if Clock.seconds(since: start) > timeout {
                throw HarnessError("bgfetchd did not \(owned ? "take" : "release") its name within \(Int(timeout)) s")
            }
            usleep(200)
        }
    }
}
