import BackgroundFetchContract
import DBus
import Foundation
import TestKit

/// Many waiting tasks released by one change of the machine: `count` tasks
/// that require the network fall due while python3-dbusmock's
/// NetworkManager (on a second private bus, the daemon's system bus) says
/// the machine is offline; then one `PropertiesChanged` says it is online.
/// Measured: how many wake-ups the daemon needs to send them all (its own
/// "released waiting fetches" log lines: one per wake-up that released
/// any), and the time from the change to the last `FetchRequested`, against
/// the same number of unicast signals from a plain client.
enum ReleaseStage {
    struct Outcome {
        var wakeUps: Int
        /// Milliseconds from the change to the last FetchRequested.
        var lastArrival: Double
        /// Milliseconds from a plain client's first signal to its last arrival.
        var busOnly: Double
    }

    static let clients = 10

    static func run(_ lab: Lab, count: Int) throws(HarnessError) -> Outcome {
        let folder = try lab.folder("system-bus")
        let system = try HarnessError.wrapping("cannot start the second private bus") { try PrivateBus(config: .session, in: folder) }
        defer { system.stop() }
        let mockLog = try lab.folder("networkmanager") + "/dbusmock.log"
        let mock = try ChildProcess(
            "/usr/bin/python3", ["-m", "dbusmock", "--system", "--template", "networkmanager"],
            environment: ProcessInfo.processInfo.environment.merging(["DBUS_SYSTEM_BUS_ADDRESS": system.address]) { $1 },
            stdout: mockLog, stderr: mockLog)
        defer { mock.terminate(SIGTERM) }
        let control = try HarnessError.wrapping("cannot connect to the second bus") {
            try BusConnection.connect(.address(system.address), threadName: "bench-mock-control")
        }
        defer { control.close() }
        func setNetworkState(_ state: UInt32) throws(HarnessError) {
            _ = try HarnessError.wrapping("cannot set NetworkManager's state (is python3-dbusmock installed?)") {
                try control.callBlocking(
                    Message.methodCall(
                        destination: "org.freedesktop.NetworkManager", path: "/org/freedesktop",
                        interface: "org.freedesktop.DBus.Mock", member: "SetGlobalConnectionState", [.uint32(state)]))
            }
        }
        let giveUpMock = Clocks.nanos + 15_000_000_000
        while (try? control.callBus("NameHasOwner", [.string("org.freedesktop.NetworkManager")]).first?.boolValue) != true {
            guard mock.isRunning, Clocks.nanos < giveUpMock else {
                throw HarnessError("dbusmock's NetworkManager did not appear; see \(mockLog)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        try setNetworkState(20)  // disconnected

        let daemon = try lab.startDaemon(stateDirectory: try lab.folder("release"), systemBus: system.address)
        var connections: [ServiceClient] = []
        defer { for connection in connections { connection.close() } }
        let arrivals = (0..<clients).map { _ in Arrivals() }
        for index in 0..<clients {
            connections.append(
                try arrivals[index].listen(lab, app: "\(Lab.appPrefix).Release\(index)", thread: "bench-release-\(index)"))
        }
        let options = DBusValue.vardict(keyed: [
            RegisterOptionKey.minimumInterval: .uint32(1), .stopOnTerminate: .bool(true), .requiresNetwork: .bool(true),
        ])
        for index in 0..<count {
            try HarnessError.wrapping("RegisterTask failed") { try connections[index % clients].call("RegisterTask", [.string("wait\(index)"), options]) }
        }
        // Every task falls due (a second after registering) and waits.
        let probe = try lab.connect(thread: "bench-release-probe")
        defer { probe.close() }
        try HarnessError.wrapping("not every task was waiting") {
            try pollUntil("every task to wait", timeout: 60, every: 0.1) { () throws -> Bool? in
                try probe.allTasks().values.flatMap(\.values).filter { $0["state"]?.stringValue == "waiting" }.count >= count ? true : nil
            }
        }
        guard arrivals.allSatisfy({ $0.count == 0 }) else { throw HarnessError("a waiting task was sent while offline") }
        let logBefore = daemon.log

        let changed = Clocks.unixMicros
        try setNetworkState(70)  // connected globally: one PropertiesChanged
        Arrivals.wait(for: count, in: arrivals, timeout: 30)
        let times = arrivals.flatMap(\.times)
        guard times.count == count else { throw HarnessError("only \(times.count) of \(count) waiting tasks were sent") }
        Thread.sleep(forTimeInterval: 0.2)
        let logAfter = daemon.log
        let released = logAfter.dropFirst(logBefore.count).split(separator: "\n").filter { $0.contains("released waiting fetches") }
        try daemon.stopCleanly()

        for recorder in arrivals { recorder.reset() }
        let floor = try DueStage.busFloor(lab, to: connections.map(\.uniqueName), count: count, arrivals: arrivals)
        return Outcome(
            wakeUps: released.count, lastArrival: Double(times.max()! - changed) / 1000, busOnly: floor.max)
    }
}
