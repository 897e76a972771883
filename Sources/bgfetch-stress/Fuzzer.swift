import DBus
import Foundation
import TestKit
import Glibc

/// The fuzzer: introspects the service and calls every member with values
/// generated from its signature, wrong signatures, extra and missing
/// arguments, no interface field and no reply expected. Every call that wants
/// a reply gets one; the daemon never dies; its memory and descriptors stay bounded.
struct Fuzzer {
    let settings: Settings
    let report: PartReport

    enum Expect: String { case reply, invalidArgs, unknownMethod, unknownInterface, unknownObject }

    struct Call {
        var path = ServiceClient.path
        var interface: String?
        var member: String
        var arguments: [DBusValue]
        var expect: Expect = .reply
        var wantsReply = true
        var label: String
    }

    func run() throws {
        let bus = try PrivateBus(kind: settings.bus)
        let daemon = try settings.startDaemon(on: bus, arguments: ["--fetch-timeout", "5"])
        var stopped = false
        defer { if !stopped { daemon.stop() } }
        let clients = [
            try ServiceClient(address: bus.address, name: "org.stress.fuzz", threadName: "fuzz-1"),
            try ServiceClient(address: bus.address, name: nil, threadName: "fuzz-2"),
        ]
        // Let the daemon settle (first calls resolve identities) before the baseline.
        _ = clients.map { $0.result("GetStatus") }
        let baseline = daemon.stats
        report.progress("daemon pid \(daemon.pid ?? 0) up; baseline \(baseline?.description ?? "?")")

        let methods = try introspect(clients[0])
        report.check(methods.count >= 15, "introspection lists the service's methods", "found \(methods.count)")
        report.progress("introspected \(methods.count) methods in \(Set(methods.map(\.interface)).count) interfaces")

        var rng = settings.generator
        let calls = generate(methods, &rng)
        report.progress("generated \(calls.count) calls (\(calls.filter { !$0.wantsReply }.count) with NO_REPLY_EXPECTED)")

        let outcomes = Tally()
        let mismatches = Tally()
        var peak = baseline ?? ProcStats(rssKiB: 0, fds: 0)
        let window = DispatchSemaphore(value: 32)
        let started = Clocks.now
        var unbuildable = 0
        for (index, call) in calls.enumerated() {
            let message: Message
            do {
                message = try Message.methodCall(
                    destination: ServiceClient.name, path: call.path, interface: call.interface, member: call.member,
                    call.arguments, expectsReply: call.wantsReply)
            } catch {
                unbuildable += 1
                continue
            }
            let client = clients[index % clients.count]
            if !call.wantsReply {
                client.connection.send(message)
                outcomes.add("sent without reply")
                continue
            }
            window.wait()
            client.callAsync(message, timeout: 10_000) { result in
                defer { window.signal() }
                let got: String
                switch result {
                case .success: got = "ok"
                case .failure(let error): got = error.name
                }
                outcomes.add(got, example: "\(call.label): \(result)")
                if let problem = Self.mismatch(call, result) {
                    mismatches.add(problem, example: "\(call.label) → \(got)")
                }
            }
            if index % 250 == 0 {
                guard daemon.isAlive else { break }
                peak = peak.peak(daemon.stats)
            }
            if index > 0 && index % max(1, calls.count / 5) == 0 {
                report.progress("\(index)/\(calls.count) calls, \(String(format: "%.0f", Double(index) / (Clocks.now - started)))/s; daemon \(daemon.stats?.description ?? "gone")")
            }
        }
        for _ in 0..<32 { window.wait() }
        for _ in 0..<32 { window.signal() }

        // The daemon is alive and answers after all of it.
        let alive = daemon.isAlive
        report.check(alive, "the daemon never died", "exit status \(daemon.process?.exitCode.map(String.init) ?? "?"); log tail:\n\(daemon.logTail())")
        let after = clients[0].result("GetStatus")
        report.check((try? after.get()) != nil, "GetStatus answers after the fuzzing", "\(after)")
        let ping = clients[1].result("Ping", interface: "org.freedesktop.DBus.Peer")
        report.check((try? ping.get()) != nil, "Peer.Ping answers after the fuzzing", "\(ping)")

        let timeouts = outcomes[DBusError.Name.noReply] + outcomes[DBusError.Name.disconnected]
        report.check(timeouts == 0, "every call that expects a reply got one", "\(timeouts) without a reply, e.g. \(outcomes.examples(DBusError.Name.noReply))")
        for (problem, count) in mismatches.all.sorted(by: { $0.key < $1.key }) {
            report.check(false, "the contract's error for every bad call", "\(count)× \(problem), e.g. \(mismatches.examples(problem))")
        }
        for client in clients { client.close() }
        usleep(500_000)
        let final = daemon.stats
        if let baseline, let final {
            report.check(peak.rssKiB - baseline.rssKiB < 96 * 1024, "RSS stays bounded (< 96 MiB growth)", "baseline \(baseline), peak \(peak.rssKiB / 1024) MiB")
            report.check(final.rssKiB - baseline.rssKiB < 48 * 1024, "RSS after the fuzzing is near the baseline (< 48 MiB growth)", "baseline \(baseline), after \(final)")
            report.check(final.fds <= baseline.fds + 2, "open descriptors return to the baseline", "baseline \(baseline.fds), after \(final.fds)")
            report.check(peak.fds <= baseline.fds + 8, "open descriptors stay bounded", "baseline \(baseline.fds), peak \(peak.fds)")
        }
        report.figure("calls tried", "\(calls.count - unbuildable) (\(outcomes["sent without reply"]) without reply; \(unbuildable) not buildable by libdbus)")
        report.figure("replies", outcomes.description)
        report.figure("daemon before/after", "\(baseline?.description ?? "?") → \(final?.description ?? "?") (peak RSS \(String(format: "%.1f", peak.rssMiB)) MiB, peak fds \(peak.fds))")
        report.figure("calls per second", String(format: "%.0f", Double(calls.count) / (Clocks.now - started)))

        // A clean stop: exit 0, and nothing a sanitizer (a --sanitize build) would say.
        let code = daemon.stop(signal: SIGTERM)
        stopped = true
        report.check(code == 0, "SIGTERM stops the daemon cleanly (exit 0)", "exit \(code.map(String.init) ?? "none")")
        let log = daemon.log
        let sanitizer = log.split(separator: "\n").filter { $0.contains("Sanitizer") || $0.contains("runtime error:") }
        report.check(sanitizer.isEmpty, "no sanitizer report in the daemon's log", sanitizer.prefix(5).joined(separator: "\n"))
    }

    /// Introspects the object and every path above it.
    private func introspect(_ client: ServiceClient) throws -> [IntrospectedMethod] {
        var methods: [IntrospectedMethod] = []
        for path in ["/", "/org", "/org/bgfetch", ServiceClient.path] {
            let message = try Message.methodCall(
                destination: ServiceClient.name, path: path, interface: "org.freedesktop.DBus.Introspectable", member: "Introspect")
            let reply = client.send(message)
            guard case .success(let answer) = reply, let xml = answer.arguments.first?.stringValue else {
                report.check(false, "Introspect answers at \(path)", "\(reply)")
                continue
            }
            let parsed = Introspection(xml: xml)
            if path == ServiceClient.path {
                methods = parsed.methods
            } else {
                report.check(!parsed.children.isEmpty, "Introspect at \(path) names a child node", xml)
            }
        }
        return methods
    }

    private func generate(_ methods: [IntrospectedMethod], _ rng: inout SplitMix64) -> [Call] {
        let randomPerMember = settings.scaled(quick: 40, full: 2_000)
        var calls: [Call] = []
        for method in methods {
            let types = method.inputs.compactMap { WireType.parse($0) }.flatMap { $0 }
            let typical = types.map(FuzzValues.typical)
            let known = !method.interface.hasPrefix("org.freedesktop.DBus.Peer")
            func call(_ arguments: [DBusValue], _ label: String, expect: Expect = .reply, interface: String?? = nil) -> Call {
                Call(
                    interface: interface ?? method.interface, member: method.name, arguments: arguments, expect: expect,
                    label: "\(method.name)(\(label))")
            }
            // Each argument through its boundary values, the others typical.
            for (position, type) in types.enumerated() {
                for (n, value) in FuzzValues.boundary(type).enumerated() {
                    var arguments = typical
                    arguments[position] = value
                    calls.append(call(arguments, "arg\(position) boundary \(n)"))
                }
            }
            // Random values of the right types.
            for n in 0..<randomPerMember {
                calls.append(call(types.map { FuzzValues.random($0, &rng) }, "random \(n)"))
            }
            // Missing and extra arguments, and wrong signatures.
            let wrong: Expect = known ? .invalidArgs : .reply
            if !typical.isEmpty { calls.append(call(Array(typical.dropLast()), "missing argument", expect: wrong)) }
            calls.append(call(typical + [.string("extra")], "extra argument", expect: wrong))
            calls.append(call(typical + [.uint32(0), FuzzValues.nested(30, .string("x"))], "two extra arguments", expect: wrong))
            for n in 0..<settings.scaled(quick: 8, full: 60) {
                let count = Int.random(in: 0...4, using: &rng)
                let arguments = (0..<count).map { _ in FuzzValues.random(FuzzValues.randomType(&rng), &rng) }
                let signature = arguments.map(\.signature).joined()
                guard signature != method.inputs.joined() else { continue }
                calls.append(call(arguments, "wrong signature \(n) '\(signature)'", expect: wrong))
            }
            // No interface field; no reply expected; wrong interface, member and path.
            calls.append(call(typical, "no interface", interface: .some(nil)))
            for n in 0..<settings.scaled(quick: 3, full: 20) {
                var noReply = call(types.map { FuzzValues.random($0, &rng) }, "no reply \(n)")
                noReply.wantsReply = false
                calls.append(noReply)
            }
            calls.append(call(typical, "unknown interface", expect: .unknownInterface, interface: "org.bgfetch.BackgroundFetch1.Nope"))
            var otherPath = call(typical, "unknown path", expect: known ? .unknownObject : .reply)
            otherPath.path = ServiceClient.path + "/Nope"
            calls.append(otherPath)
            var parentPath = call(typical, "parent path", expect: method.name == "Introspect" || !known ? .reply : .unknownObject)
            parentPath.path = "/org/bgfetch"
            calls.append(parentPath)
        }
        for (interface, member) in [
            ("org.bgfetch.BackgroundFetch1", "Nope"), ("org.bgfetch.BackgroundFetch1.Manager", "RegisterTask"),
            ("org.freedesktop.DBus.Properties", "Nope"), ("org.freedesktop.DBus.Introspectable", "Nope"),
        ] {
            calls.append(Call(interface: interface, member: member, arguments: [], expect: .unknownMethod, label: "\(interface).\(member)"))
        }
        calls.append(Call(interface: nil, member: "Nope", arguments: [.string("x")], expect: .unknownMethod, label: "Nope without interface"))
        calls.shuffle(using: &rng)
        return calls
    }

    /// What is wrong with the reply a call got, if anything.
    static func mismatch(_ call: Call, _ result: Result<Message, DBusError>) -> String? {
        switch (call.expect, result) {
        case (_, .failure(let error)) where error.isFromBus:
            return nil  // counted as "no reply" separately
        case (.reply, _):
            return nil
        case (let expect, .success):
            return "\(expect.rawValue) expected, got a successful reply"
        case (let expect, .failure(let error)):
            let wanted: String
            switch expect {
            case .invalidArgs: wanted = DBusError.Name.invalidArgs
            case .unknownMethod: wanted = DBusError.Name.unknownMethod
            case .unknownInterface: wanted = DBusError.Name.unknownInterface
            case .unknownObject: wanted = DBusError.Name.unknownObject
            case .reply: return nil
            }
            if error.name != wanted { return "\(expect.rawValue) expected, got \(error.name)" }
            if error.message.isEmpty { return "\(expect.rawValue) without a message" }
            return nil
        }
    }
}
