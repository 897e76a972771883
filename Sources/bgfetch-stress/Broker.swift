import Foundation
import Glibc
import TestKit

/// The parts again on dbus-broker (the second bus implementation), plus a
/// delivery round trip.
struct BrokerSmoke {
    let settings: Settings
    let report: PartReport

    func run() throws {
        guard DBusBroker.isInstalled else {
            return report.skip("dbus-broker is not installed (Debian package dbus-broker)")
        }
        // Once for every bus below; a namespace that cannot be made fails here, once.
        try BrokerNamespace.prepare()
        var onBroker = settings
        onBroker.bus = .dbusBroker
        try delivery(onBroker)
        for part in [BGFetchStress.Part.fuzz, .kill9, .misbehaving, .churn] {
            let sub = PartReport("broker/\(part.rawValue)")
            do {
                try BGFetchStress.run(part, settings: onBroker, report: sub, inNamespace: true)
            } catch {
                sub.check(false, "the part ran to its end", "\(error)")
            }
            report.check(sub.passed, "\(part.rawValue) passes on dbus-broker")
            report.attach(sub.summary)
        }
    }

    /// Register, trigger, receive, finish, history; a stopOnTerminate task goes with its connection.
    private func delivery(_ settings: Settings) throws {
        let bus = try PrivateBus(kind: settings.bus)
        let daemon = try settings.startDaemon(on: bus)
        defer { daemon.stop() }
        report.progress("bgfetchd serves on dbus-broker")
        let received = Locked<[UInt64]>([])
        let app = try ServiceClient(address: bus.address, name: "org.stress.broker.app", threadName: "broker-app") { message in
            guard message.member == "FetchRequested", let id = message.arguments.last?.uint64Value else { return }
            received.withLock { $0.append(id) }
        }
        defer { app.close() }
        let otherSeen = Locked<Int>(0)
        let other = try ServiceClient(address: bus.address, name: "org.stress.broker.other", threadName: "broker-other") { message in
            if message.member == "FetchRequested" { otherSeen.withLock { $0 += 1 } }
        }
        defer { other.close() }

        report.check((try? app.result("RegisterTask", [.string("t"), .vardict(.options(interval: 3600))]).get()) != nil, "RegisterTask works on dbus-broker")
        let status = try? app.result("GetStatus").get()
        report.check(status?.first?.uint32Value == 3, "GetStatus is Available on dbus-broker", "\(String(describing: status))")
        let id = (try? app.result("TriggerFetch", [.string("t")]).get())?.first?.uint64Value
        let arrived = id.map { id in (try? pollUntil("FetchRequested", timeout: 5, every: 0.002) { received.value.contains(id) ? true : nil }) ?? false }
        report.check(arrived ?? false, "FetchRequested reaches the app on dbus-broker", "request \(String(describing: id))")
        if let id {
            let finish = app.result("FinishFetch", [.uint64(id), .uint32(2)])
            report.check((try? finish.get()) != nil, "FinishFetch works on dbus-broker", "\(finish)")
        }
        let history = try? app.result("GetHistory", [.string("org.stress.broker.app"), .string("t")], interface: ServiceClient.manager).get()
        let rows = history?.first?.arrayValue ?? []
        report.check(rows.count == 1 && rows.first?.structValue?.last?.uint32Value == 2, "GetHistory shows the finished fetch", "\(String(describing: history))")
        report.check(otherSeen.withLock { $0 } == 0, "FetchRequested goes to the owning app only", "another app saw \(otherSeen.withLock { $0 })")

        // Identity and departures come from the bus: a task goes with its connection.
        let leaver = try ServiceClient(address: bus.address, name: "org.stress.broker.leaver", threadName: "broker-leaver")
        _ = leaver.result("RegisterTask", [.string("gone"), .vardict(.options(interval: 3600))])
        leaver.close()
        let left = app.tasksLeft(timeout: 5, every: 0.02) { $0 == "org.stress.broker.leaver" }
        report.check(left == 0, "a stopOnTerminate task goes when its connection leaves dbus-broker", "\(left) left")
    }
}
