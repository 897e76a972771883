import DBus
import Foundation
import TestKit
import Glibc
import Synchronization

/// Misbehaving apps: many apps (child processes of this program) never
/// answer, answer twice, late or with another app's id, stop themselves,
/// leave mid-fetch or flood the daemon. Meanwhile a well-behaved client
/// measures GetStatus latency and gets its own fetches on time; the daemon's
/// memory stays bounded and it cleans up after the apps leave.
struct Misbehaving {
    let settings: Settings
    let report: PartReport

    func run() throws {
        let duration = settings.scaled(quick: 12.0, full: 60.0)
        let processesPerMode = settings.scaled(quick: 1, full: 6)
        let appsPerProcess = settings.scaled(quick: 4, full: 8)
        let fetchTimeout = 2.0
        let bus = try PrivateBus(kind: settings.bus)
        let configFile = bus.directory + "/bgfetchd.conf"
        try "[Limits]\nTasksPerApp=64\nTasksPerUser=1000000\n".write(toFile: configFile, atomically: true, encoding: .utf8)
        let daemon = try settings.startDaemon(on: bus, arguments: ["--fetch-timeout", String(Int(fetchTimeout)), "--config", configFile])
        defer { daemon.stop() }

        // The well-behaved app: answers each fetch at once, from its connection's thread, without waiting.
        let arrivals = Mutex<[Double]>([])
        let goodClient = Locked<ServiceClient?>(nil)
        let good = try ServiceClient(address: bus.address, name: "org.stress.good", threadName: "good") { message in
            guard message.member == "FetchRequested", let id = message.arguments.last?.uint64Value else { return }
            arrivals.withLock { $0.append(Clocks.now) }
            if let finish = try? ServiceClient.message("FinishFetch", [.uint64(id), .uint32(2)]) {
                goodClient.value?.callAsync(finish) { _ in }
            }
        }
        defer { good.close() }
        goodClient.withLock { $0 = good }
        let probe = try ServiceClient(address: bus.address, name: "org.stress.probe", threadName: "probe")
        defer { probe.close() }
        _ = probe.result("GetStatus")
        let baseline = daemon.stats
        report.progress("daemon up (\(baseline?.description ?? "?")); starting \(settings.appModes.count * processesPerMode * appsPerProcess) misbehaving apps in \(settings.appModes.count * processesPerMode) processes for \(Int(duration)) s")

        // The apps.
        let outputs = try PrivateBus.makeTemporaryDirectory("bgfetch-stress-apps")
        defer { try? FileManager.default.removeItem(atPath: outputs) }
        var children: [(mode: AppMode, child: ChildProcess, output: String)] = []
        for mode in settings.appModes {
            for n in 0..<processesPerMode {
                let output = "\(outputs)/\(mode.rawValue)-\(n)"
                let child = try ChildProcess(
                    settings.selfPath,
                    [
                        "--act-as-app", mode.rawValue, "--address", bus.address, "--app-prefix", "org.stress.bad.\(mode.rawValue).p\(n)",
                        "--apps", String(appsPerProcess), "--duration", String(duration), "--fetch-timeout", String(fetchTimeout),
                    ] + (settings.appsWatchBroadcasts ? ["--apps-watch-broadcasts"] : []),
                    stdout: output, stderr: output + ".err")
                children.append((mode, child, output))
            }
        }
        let appCount = children.count * appsPerProcess

        // The good app's task, registered once the apps are coming.
        let registered = good.result("RegisterTask", [.string("good"), .vardict(.options(interval: 1))])
        report.check((try? registered.get()) != nil, "the well-behaved app registers", "\(registered)")
        _ = good.result("TriggerFetch", [.string("good")])

        // Measure GetStatus round trips while it all goes on.
        let cpuStart = (daemon: daemon.pid.flatMap(ProcStats.cpuSeconds) ?? 0, bus: ProcStats.cpuSeconds(bus.servingPID) ?? 0)
        var latencies: [Double] = []
        // The floors, interleaved: Peer.Ping to bgfetchd (libdbus answers it
        // as it reads, before any of our code: the same two hops through the
        // bus as GetStatus) and the bus driver's GetId (one hop).
        var pingLatencies: [Double] = []
        var busLatencies: [Double] = []
        /// A floor call's round trip in milliseconds; nil if it failed.
        func roundTrip(_ call: Message?) -> Double? {
            guard let call else { return nil }
            let t0 = Clocks.now
            guard case .success = probe.send(call, timeout: 25_000) else { return nil }
            return (Clocks.now - t0) * 1000
        }
        let statusFailures = Tally()
        var peak = baseline ?? ProcStats(rssKiB: 0, fds: 0)
        let start = Clocks.now
        var lastStats = start, lastContinue = start, lastProgress = start
        while Clocks.now - start < duration {
            let t0 = Clocks.now
            let result = probe.result("GetStatus", timeout: 25_000)
            let t1 = Clocks.now
            switch result {
            case .success: latencies.append((t1 - t0) * 1000)
            case .failure(let error): statusFailures.add(error.name, example: error.message)
            }
            if let ms = roundTrip(try? ServiceClient.message("Ping", [], interface: "org.freedesktop.DBus.Peer")) {
                pingLatencies.append(ms)
            }
            if let ms = roundTrip(try? Message.busDriverCall("GetId")) { busLatencies.append(ms) }
            if t1 - lastStats > 0.5 {
                peak = peak.peak(daemon.stats)
                lastStats = t1
            }
            if t1 - lastContinue > 3 {
                // Stopped apps get going again, to stop at their next fetch.
                for entry in children where entry.mode == .sigstop { entry.child.signal(SIGCONT) }
                lastContinue = t1
            }
            if t1 - lastProgress > duration / 4 {
                report.progress(String(format: "%.0f s: GetStatus p99 %.2f ms over %d calls; good app got %d fetches; daemon %@",
                    t1 - start, Sample(latencies).percentile(99), latencies.count, arrivals.withLock { $0.count }, daemon.stats?.description ?? "gone"))
                lastProgress = t1
            }
            usleep(2_000)
        }
        let goodArrivals = arrivals.withLock { $0 }
        let cpuDaemon = (daemon.pid.flatMap(ProcStats.cpuSeconds) ?? 0) - cpuStart.daemon
        let cpuBus = (ProcStats.cpuSeconds(bus.servingPID) ?? 0) - cpuStart.bus
        report.figure("CPU used in the window", String(format: "bgfetchd %.1f s, the bus (%@) %.1f s, over %.0f s on %d cores",
            cpuDaemon, bus.kind.rawValue, cpuBus, Clocks.now - start, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let stillAlive = daemon.isAlive
        report.check(stillAlive, "the daemon survives the misbehaving apps", "log tail:\n\(daemon.logTail())")

        // Let the apps finish and collect what they saw.
        for entry in children where entry.mode == .sigstop { entry.child.signal(SIGCONT) }
        let tally = Tally()
        var unfinished = 0
        for entry in children {
            var waited = 0.0
            while entry.child.wait(timeout: 0.5) == nil, waited < 40 {
                entry.child.signal(SIGCONT)
                waited += 0.5
            }
            if entry.child.isRunning {
                unfinished += 1
                entry.child.terminate()
            }
            let text = (try? String(contentsOfFile: entry.output, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("RESULT") }) else {
                tally.add("\(entry.mode.rawValue): no result")
                continue
            }
            for field in line.split(separator: " ").dropFirst(3) {
                let parts = field.split(separator: "=")
                guard parts.count == 2, let n = Int(parts[1]) else { continue }
                for _ in 0..<n { tally.add("\(entry.mode.rawValue): \(parts[0].replacingOccurrences(of: "_", with: " "))") }
            }
        }

        // Checks on what the apps saw.
        let accepted = tally.all.filter { $0.key.contains("ACCEPTED") }
        report.check(accepted.isEmpty, "answers twice, late or with another app's id are refused (UnknownRequest)", "\(accepted)")
        let noReply = tally.all.filter { $0.key.hasSuffix("no reply") }.values.reduce(0, +)
        report.check(noReply == 0, "every call of every app got a reply", "\(noReply) calls without a reply")
        let noResult = tally.all.filter { $0.key.hasSuffix("no result") }
        report.check(noResult.isEmpty && unfinished == 0, "every app process ran to its end", "\(noResult), \(unfinished) still running")
        let statusNoReply = statusFailures.total
        report.check(statusNoReply == 0, "every GetStatus of the well-behaved app was answered", statusFailures.description)

        // The well-behaved app's fetches: they came, about every second.
        let gaps = Sample(zip(goodArrivals.dropFirst(), goodArrivals).map { $0 - $1 })
        let latency = Sample(latencies), ping = Sample(pingLatencies), busDriver = Sample(busLatencies)
        let expected = Int(duration / 1.1)
        report.check(goodArrivals.count >= expected * 6 / 10, "the well-behaved app's fetches still arrive", "\(goodArrivals.count) in \(Int(duration)) s, expected about \(expected)")
        let p99 = latency.percentile(99)
        if settings.full {
            // 5 ms is the target; where the machine cannot carry even a Ping
            // to bgfetchd that fast under this load, GetStatus must stay
            // within a quarter of that floor (our code, not the bus, is judged).
            let pingP99 = ping.percentile(99)
            report.check(
                p99 <= 5 || p99 <= 1.25 * pingP99,
                "GetStatus p99 ≤ 5 ms under the misbehaving apps, or ≤ 1.25 × the Ping floor where that floor is over 5 ms",
                String(format: "p99 %.2f ms, Ping p99 %.2f ms", p99, pingP99))
            if p99 > 5 {
                report.figure("target missed", String(format: "GetStatus p99 %.2f ms > 5 ms; the bus round trip to bgfetchd alone (Ping) has p99 %.2f ms here: ratio %.2f", p99, pingP99, p99 / max(pingP99, 0.001)))
            }
            report.check(gaps.percentile(99) <= 1.1 + 0.3, "the well-behaved app's fetches arrive on time (p99 gap ≤ 1.1 s + 0.3 s)", String(format: "p99 gap %.2f s, max %.2f s", gaps.percentile(99), gaps.max))
        }

        // After the apps have gone: their tasks went with them and the daemon shrinks back.
        let leftover = probe.tasksLeft(timeout: 20, every: 0.1) { $0.hasPrefix("org.stress.bad.") }
        report.check(leftover == 0, "the apps' stopOnTerminate tasks are gone once they left", "\(leftover) left")
        usleep(500_000)
        let after = daemon.stats
        if let baseline, let after {
            report.check(peak.rssKiB - baseline.rssKiB < 256 * 1024, "daemon memory stays bounded (< 256 MiB growth)", "baseline \(baseline), peak \(peak.rssMiB) MiB")
            report.check(after.fds <= baseline.fds + 2, "descriptors return to the baseline", "baseline \(baseline.fds), after \(after.fds)")
        }
        report.figure("apps misbehaving", "\(appCount) (\(settings.appModes.map(\.rawValue).joined(separator: ", ")); \(appsPerProcess) per process)"
            + (settings.appsWatchBroadcasts ? "; each also subscribed to the FetchFinished broadcast" : ""))
        report.figure("what the apps saw", tally.description)
        report.figure("GetStatus round trip", String(format: "p50 %.2f ms, p99 %.2f ms, max %.1f ms over %d calls (target p99 ≤ 5 ms in --full)", latency.median, p99, latency.max, latency.count))
        report.figure("floor: Peer.Ping to bgfetchd, interleaved", String(format: "p50 %.2f ms, p99 %.2f ms",
            ping.median, ping.percentile(99)))
        report.figure("floor: GetId to the bus driver, interleaved", String(format: "p50 %.2f ms, p99 %.2f ms",
            busDriver.median, busDriver.percentile(99)))
        report.figure("well-behaved fetches", String(format: "%d in %.0f s; gap p50 %.2f s, p99 %.2f s, max %.2f s (interval 1 s)", goodArrivals.count, duration, gaps.median, gaps.percentile(99), gaps.max))
        report.figure("daemon before/peak/after", "\(baseline?.description ?? "?") / \(peak.description) / \(after?.description ?? "?")")
        goodClient.withLock { $0 = nil }
    }
}
