import Foundation
import Glibc

/// Starts `dbus-broker-launch` the way systemd would: the listening socket
/// passed as fd 3 (`LISTEN_FDS=1`, `LISTEN_PID` its own pid), the bus's own
/// address in `DBUS_SESSION_BUS_ADDRESS`. It needs a journal socket at
/// `/run/systemd/journal/socket`; ``BrokerLauncher/prepareNamespace()``
/// provides one, inside this process's own mount namespace only.
enum BrokerLauncher {
    static let launcher = "/usr/bin/dbus-broker-launch"

    static var isInstalled: Bool { access(launcher, X_OK) == 0 && access("/usr/bin/dbus-broker", X_OK) == 0 }

    static func start(config: String, socket path: String, log: String) throws -> Child {
        let listener = try listeningSocket(path)
        defer { close(listener) }
        var environment = ProcessInfo.processInfo.environment
        environment["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=\(path)"
        return try Child(
            "/bin/sh",
            ["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --scope user --config-file \"$1\"", launcher, config],
            environment: environment, stdout: log, stderr: log, descriptors: [3: listener])
    }

    private static func listeningSocket(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StressError("socket: \(String(cString: strerror(errno)))") }
        unlink(path)
        guard bind(fd, path) == 0, listen(fd, 256) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw StressError("cannot listen at \(path): \(reason)")
        }
        return fd
    }

    /// Binds `fd` to a Unix socket path.
    static func bind(_ fd: Int32, _ path: String) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return -1 }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in bytes.enumerated() { buffer[i] = byte }
            buffer[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    /// A tmpfs on /run (in this mount namespace only) with a journal socket
    /// that swallows what the launcher logs.
    static func prepareNamespace() throws {
        guard mount("tmpfs", "/run", "tmpfs", 0, "size=8m,mode=0755") == 0 else {
            throw StressError("cannot mount a tmpfs on /run: \(String(cString: strerror(errno)))")
        }
        try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0, bind(fd, "/run/systemd/journal/socket") == 0 else {
            throw StressError("cannot bind the journal socket: \(String(cString: strerror(errno)))")
        }
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno != EINTR { return }
            }
        }
        thread.stackSize = 256 << 10
        thread.start()
    }
}

/// The parts again on dbus-broker (the second bus implementation), plus a
/// delivery round trip.
struct BrokerSmoke {
    let settings: Settings
    let report: PartReport

    func run() throws {
        guard BrokerLauncher.isInstalled else {
            return report.skip("dbus-broker is not installed (Debian package dbus-broker)")
        }
        try BrokerLauncher.prepareNamespace()
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
        let bus = try StressBus(settings)
        let daemon = try DaemonUnderTest.started(on: bus, settings)
        defer { daemon.stop() }
        report.progress("bgfetchd serves on dbus-broker")
        let received = Locked<[UInt64]>([])
        let app = try StressClient(address: bus.address, name: "org.stress.broker.app", label: "broker-app") { message in
            guard message.member == "FetchRequested", let id = message.arguments.last?.uint64Value else { return }
            received.withLock { $0.append(id) }
        }
        defer { app.close() }
        let otherSeen = Locked<Int>(0)
        let other = try StressClient(address: bus.address, name: "org.stress.broker.other", label: "broker-other") { message in
            if message.member == "FetchRequested" { otherSeen.withLock { $0 += 1 } }
        }
        defer { other.close() }

        report.check((try? app.call("RegisterTask", [.string("t"), .options(interval: 3600)]).get()) != nil, "RegisterTask works on dbus-broker")
        let status = try? app.call("GetStatus").get()
        report.check(status?.first?.uint32Value == 3, "GetStatus is Available on dbus-broker", "\(String(describing: status))")
        let id = (try? app.call("TriggerFetch", [.string("t")]).get())?.first?.uint64Value
        let deadline = Monotonic.now + 5
        while let id, !received.withLock({ $0.contains(id) }), Monotonic.now < deadline { usleep(2_000) }
        report.check(id.map { id in received.withLock { $0.contains(id) } } ?? false, "FetchRequested reaches the app on dbus-broker", "request \(String(describing: id))")
        if let id {
            let finish = app.call("FinishFetch", [.uint64(id), .uint32(2)])
            report.check((try? finish.get()) != nil, "FinishFetch works on dbus-broker", "\(finish)")
        }
        let history = try? app.call("GetHistory", [.string("org.stress.broker.app"), .string("t")], interface: StressClient.manager).get()
        let rows = history?.first?.arrayValue ?? []
        report.check(rows.count == 1 && rows.first?.structValue?.last?.uint32Value == 2, "GetHistory shows the finished fetch", "\(String(describing: history))")
        report.check(otherSeen.withLock { $0 } == 0, "FetchRequested goes to the owning app only", "another app saw \(otherSeen.withLock { $0 })")

        // Identity and departures come from the bus: a task goes with its connection.
        let leaver = try StressClient(address: bus.address, name: "org.stress.broker.leaver", label: "broker-leaver")
        _ = leaver.call("RegisterTask", [.string("gone"), .options(interval: 3600)])
        leaver.close()
        var left = -1
        let until = Monotonic.now + 5
        while Monotonic.now < until {
            let tasks = (try? app.call("ListTasks", interface: StressClient.manager).get())?.first?.arrayValue ?? []
            left = tasks.filter { $0.structValue?.first?.stringValue == "org.stress.broker.leaver" }.count
            if left == 0 { break }
            usleep(20_000)
        }
        report.check(left == 0, "a stopOnTerminate task goes when its connection leaves dbus-broker", "\(left) left")
    }
}
