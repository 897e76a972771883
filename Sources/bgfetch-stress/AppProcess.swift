import ArgumentParser
import DBus
import Foundation
import TestKit
import Glibc
import Synchronization

/// How a misbehaving app misbehaves.
enum AppMode: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// Never answers a fetch.
    case never
    /// Answers each fetch twice.
    case twice
    /// Answers after the fetch timeout.
    case late
    /// Answers with another app's request id.
    case wrongid
    /// Stops itself (SIGSTOP) when a fetch comes.
    case sigstop
    /// Leaves the bus in the middle of a fetch, and comes back.
    case disconnect
    /// Floods TriggerFetch and RegisterTask.
    case flood
}

/// `bgfetch-stress --act-as-app MODE`: one process with `count` apps (one
/// connection and well-known name each) that misbehave in one way until
/// `duration` seconds have passed, then print what they saw as one line:
/// `RESULT key=count ...`.
struct AppProcess {
    let mode: AppMode
    let address: String
    let prefix: String
    let count: Int
    let duration: Double
    let fetchTimeout: Double
    /// Subscribe to every signal of the service, the FetchFinished broadcast included.
    let allSignals: Bool

    private final class Shared: Sendable {
        let events = Mutex<[(app: Int, name: String, id: UInt64)]>([])
        let tally = Tally()
        let inFlight = Atomic<Int>(0)
    }

    func run() -> Int32 {
        let shared = Shared()
        let end = Clocks.now + duration
        var apps: [ServiceClient?] = Array(repeating: nil, count: count)
        func connect(_ index: Int) -> ServiceClient? {
            for _ in 0..<100 {
                if let client = try? ServiceClient(address: address, name: "\(prefix).a\(index)", threadName: "app-\(index)", subscription: allSignals ? .everything : .appInterface, onSignal: { message in
                    guard message.member == "FetchRequested", let name = message.arguments.first?.stringValue,
                        let id = message.arguments.last?.uint64Value
                    else { return }
                    shared.events.withLock { $0.append((index, name, id)) }
                }) {
                    return client
                }
                usleep(10_000)
            }
            shared.tally.add("cannot connect")
            return nil
        }
        for index in 0..<count {
            apps[index] = connect(index)
            if let app = apps[index] {
                note(app.result("RegisterTask", [.string("t"), .vardict(.options(interval: 1))]), "register", shared.tally)
                if mode != .flood { note(app.result("TriggerFetch", [.string("t")]), "trigger", shared.tally) }
            }
        }
        var late: [(due: Double, app: Int, id: UInt64)] = []
        var rng = SystemRandomNumberGenerator()
        while Clocks.now < end {
            let events = shared.events.withLock { list in
                defer { list.removeAll() }
                return list
            }
            for event in events {
                shared.tally.add("fetches")
                guard let app = apps[event.app] else { continue }
                switch mode {
                case .never, .flood:
                    break
                case .twice:
                    note(app.result("FinishFetch", [.uint64(event.id), .uint32(2)]), "first answer", shared.tally)
                    note(app.result("FinishFetch", [.uint64(event.id), .uint32(2)]), "second answer", shared.tally, refused: true)
                case .late:
                    late.append((Clocks.now + fetchTimeout + 1, event.app, event.id))
                case .wrongid:
                    for other in [event.id &- 1, event.id &+ 1, event.id &+ 7] where other != event.id {
                        note(app.result("FinishFetch", [.uint64(other), .uint32(2)]), "another app's id", shared.tally, refused: true)
                    }
                case .sigstop:
                    // Near the end no more: the process must be able to finish.
                    guard Clocks.now < end - 1 else { break }
                    shared.tally.add("stops")
                    raise(SIGSTOP)
                    // Continued: answer, most likely too late.
                    _ = app.result("FinishFetch", [.uint64(event.id), .uint32(2)])
                case .disconnect:
                    app.close()
                    apps[event.app] = nil
                    shared.tally.add("disconnects mid-fetch")
                    usleep(UInt32.random(in: 10_000...200_000, using: &rng))
                    if let fresh = connect(event.app) {
                        apps[event.app] = fresh
                        note(fresh.result("RegisterTask", [.string("t"), .vardict(.options(interval: 1))]), "register again", shared.tally)
                        note(fresh.result("TriggerFetch", [.string("t")]), "trigger", shared.tally)
                    }
                }
            }
            let now = Clocks.now
            for entry in late where entry.due <= now {
                if let app = apps[entry.app] {
                    note(app.result("FinishFetch", [.uint64(entry.id), .uint32(2)]), "late answer", shared.tally, refused: true)
                }
            }
            late.removeAll { $0.due <= now }
            if mode == .flood {
                flood(apps, shared, &rng)
            } else {
                usleep(2_000)
            }
        }
        // Wait a little for the flood's last replies.
        let drain = Clocks.now + 15
        while shared.inFlight.load(ordering: .relaxed) > 0, Clocks.now < drain { usleep(5_000) }
        let results = shared.tally.all.sorted { $0.key < $1.key }.map { "\($0.key.replacingOccurrences(of: " ", with: "_"))=\($0.value)" }
        print("RESULT mode=\(mode.rawValue) apps=\(count) " + results.joined(separator: " "))
        fflush(nil)
        // Leave without closing each connection: the bus sees them all go at once.
        _exit(0)
    }

    /// Keeps four calls in flight per app: TriggerFetch and RegisterTask of ever new names.
    private func flood(_ apps: [ServiceClient?], _ shared: Shared, _ rng: inout SystemRandomNumberGenerator) {
        var sent = false
        for app in apps.compactMap({ $0 }) where shared.inFlight.load(ordering: .relaxed) < 4 * apps.count {
            let message: Message
            do {
                message = Bool.random(using: &rng)
                    ? try ServiceClient.message("TriggerFetch", [.string("t")])
                    : try ServiceClient.message("RegisterTask", [.string("f\(Int.random(in: 0..<100, using: &rng))"), .vardict(.options(interval: 1))])
            } catch { continue }
            shared.inFlight.add(1, ordering: .relaxed)
            sent = true
            app.callAsync(message, timeout: 25_000) { [self] result in
                shared.inFlight.subtract(1, ordering: .relaxed)
                note(result.map(\.arguments), "flood", shared.tally)
            }
        }
        if !sent { usleep(500) }
    }

    /// Counts a call that should succeed, or with `refused`, one the daemon must refuse with UnknownRequest.
    private func note(_ result: Result<[DBusValue], DBusError>, _ what: String, _ tally: Tally, refused: Bool = false) {
        switch result {
        case .success: tally.add(refused ? "ACCEPTED \(what)" : "\(what) ok")
        case .failure(let error) where error.name == DBusError.Name.noReply: tally.add("no reply")
        case .failure(let error) where refused && error.name.hasSuffix("UnknownRequest"): tally.add("\(what) refused")
        case .failure(let error): tally.add("\(what) \(error.name.split(separator: ".").last ?? "")")
        }
    }
}
