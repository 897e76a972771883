import DBus
import Foundation
import Synchronization
import TestKit
import Testing

/// Calls wait in one queue per connection and are served fairly (README,
/// *Layout*); what that must never cost is a call that was sent.
@Suite(.timeLimit(.minutes(2)))
struct FairDispatchTests {
    /// A connection that sends a burst of calls without waiting and leaves
    /// at once: its departure may reach the daemon while its calls still
    /// wait their turn. They are served first, as sent, and each of its
    /// persistent tasks is there afterwards.
    @Test func callsSentJustBeforeLeavingAreServed() throws {
        let f = try Fixture()
        for round in 0..<5 {
            let appID = "org.example.Leaver\(round)"
            let app = try f.app(appID)
            _ = try app.call("GetStatus")  // known to the daemon before the burst
            for n in 0..<60 {
                let message = try Message.methodCall(
                    destination: ServiceClient.name, path: ServiceClient.path, interface: ServiceClient.app,
                    member: "RegisterTask", [.string("t\(n)"), .vardict(.options(interval: 3600, stopOnTerminate: false))],
                    expectsReply: false)
                _ = app.connection.send(message)
            }
            app.close()
            var held = -1
            let deadline = Date().addingTimeInterval(10)
            repeat {
                held = try f.client.allTasks()[appID]?.count ?? 0
                if held == 60 { break }
                usleep(20_000)
            } while Date() < deadline
            #expect(held == 60, "round \(round): \(held) of the 60 tasks registered just before leaving")
        }
    }

    /// A query (`IsTaskRegistered`, `GetStatus`, `GetAppStatus`) is answered
    /// as soon as it is read, but only when its caller has nothing queued:
    /// it never overtakes that caller's own earlier calls, nor their replies;
    /// and a caller still being identified has its queries wait with its
    /// other calls.
    @Test func aQueryNeverOvertakesItsCallersEarlierCalls() throws {
        let f = try Fixture()
        let daemonPID = try #require(f.daemon.pid)
        let known = try f.app("org.example.Orderly")
        defer { known.close() }
        // Positive control: the query can say no (and the app is known from now on).
        #expect(try known.call("IsTaskRegistered", [.string("t0")]) == [.bool(false)])
        // Not known to the daemon yet: its first call makes the daemon ask the bus.
        let newcomer = try f.app("org.example.Newcomer")
        defer { newcomer.close() }

        // All of it reaches the daemon in one read: it is stopped while the
        // bus queues the calls, and the bus has routed them all once it
        // answers the GetId sent after them.
        let pairs = 20
        let answers = Mutex<[(app: String, call: String, answer: Result<Message, DBusError>)]>([])
        kill(daemonPID, SIGSTOP)
        var stopped = true
        defer { if stopped { kill(daemonPID, SIGCONT) } }
        for (app, repliesToRegister) in [(known, false), (newcomer, true)] {
            let id = app.appID ?? ""
            for n in 0..<pairs {
                let register = try ServiceClient.message(
                    "RegisterTask", [.string("t\(n)"), .vardict(.options(interval: 3600))], expectsReply: repliesToRegister)
                if repliesToRegister {
                    app.callAsync(register, timeout: 20_000) { answer in answers.withLock { $0.append((id, "register t\(n)", answer)) } }
                } else {
                    app.connection.send(register)
                }
                app.callAsync(try ServiceClient.message("IsTaskRegistered", [.string("t\(n)")]), timeout: 20_000) { answer in
                    answers.withLock { $0.append((id, "query t\(n)", answer)) }
                }
            }
            _ = try app.connection.callBus("GetId")
        }
        kill(daemonPID, SIGCONT)
        stopped = false

        let seen = try pollUntil("the answers to every call", timeout: 20) {
            answers.withLock { $0.count == 3 * pairs ? $0 : nil }
        }
        for app in [known, newcomer] {
            let id = app.appID ?? ""
            let own = seen.filter { $0.app == id }
            let notYet = own.filter { $0.call.hasPrefix("query") && (try? $0.answer.get().arguments) != [.bool(true)] }.map(\.call)
            #expect(notYet.isEmpty, "\(id): queried right after registering, not registered yet: \(notYet)")
        }
        // The newcomer's replies came in the order of its calls.
        let order = seen.filter { $0.app == newcomer.appID }.map(\.call)
        let sent = (0..<pairs).flatMap { ["register t\($0)", "query t\($0)"] }
        #expect(order == sent, "replies in the order \(order)")
    }

    /// A burst of calls that ask for no reply, far more than may wait at
    /// once: the ones over the limit are dropped, never answered, and the
    /// connection is served normally afterwards.
    @Test func callsWithoutReplyAreNeverAnsweredEvenWhenRefused() throws {
        let f = try Fixture()
        let daemonPID = try #require(f.daemon.pid)
        let flooder = try f.bus.connect()
        defer { flooder.close() }
        _ = try flooder.requestName("org.example.Flooder")
        // Every reply or error that is not the answer to one of our own calls.
        let unasked = Mutex<[Message]>([])
        flooder.setMessageHandler { message in
            guard message.kind == .error || message.kind == .methodReturn else { return false }
            unasked.withLock { $0.append(message) }
            return true
        }
        let getStatus = { (expectsReply: Bool) throws -> Message in
            try Message.methodCall(
                destination: ServiceClient.name, path: ServiceClient.path, interface: ServiceClient.app, member: "GetStatus", [],
                expectsReply: expectsReply)
        }

        // The limit is reached by the order of messages, not by the speed of
        // this machine: the burst, then calls that want a reply, pile up at
        // the bus in front of a stopped daemon. Our first call makes the
        // daemon ask the bus who we are, and the bus's answer comes behind
        // everything we sent, so every call past the first 1024 finds the
        // limit reached.
        kill(daemonPID, SIGSTOP)
        var stopped = true
        defer { if stopped { kill(daemonPID, SIGCONT) } }
        let burst = 5000, behindBurst = 64
        for _ in 0..<burst { flooder.send(try getStatus(false)) }
        let answers = Mutex<[Result<Message, DBusError>]>([])
        for _ in 0..<behindBurst {
            flooder.call(try getStatus(true), timeoutMilliseconds: 20_000) { answer in answers.withLock { $0.append(answer) } }
        }
        _ = try flooder.callBus("GetId")  // the bus has routed all we sent before it
        kill(daemonPID, SIGCONT)
        stopped = false

        try pollUntil("the answers to the calls behind the burst", timeout: 20) { answers.withLock { $0.count } == behindBurst ? true : nil }
        let outcomes = answers.withLock { $0 }.map { answer -> String in
            switch answer {
            case .success(let reply): reply.arguments == [.uint32(3)] ? "status" : "reply \(reply.arguments)"
            case .failure(let error): error.name
            }
        }
        let limitExceeded = "org.bgfetch.BackgroundFetch1.Error.LimitExceeded"
        let refusedBehindBurst = outcomes.filter { $0 == limitExceeded }.count
        #expect(refusedBehindBurst > 0, "none of the \(behindBurst) calls behind a burst of \(burst) was refused: \(outcomes)")
        #expect(outcomes.allSatisfy { $0 == limitExceeded || $0 == "status" }, "\(outcomes)")

        // While its queue is full even a call that wants a reply is refused,
        // with a reply; once the backlog is served it is answered.
        var status: [DBusValue] = []
        var refusals = 0
        let deadline = Date().addingTimeInterval(20)
        while status.isEmpty, Date() < deadline {
            do {
                status = try flooder.callBlocking(try getStatus(true), timeoutMilliseconds: 20_000).arguments
            } catch let error as DBusError where error.name == limitExceeded {
                refusals += 1
                usleep(10_000)
            }
        }
        #expect(status == [.uint32(3)], "after \(refusedBehindBurst) + \(refusals) refusals")

        // Barrier and positive control at once: a call sent without waiting
        // for its answer, so that the answer reaches the handler like any
        // unasked reply would. The daemon serves our calls in order and keeps
        // our replies in order, so a reply to any call of the burst would have
        // reached the handler before this one.
        let control = try getStatus(true)
        _ = flooder.send(control)
        let seen = try pollUntil("the reply to the control call", timeout: 10) {
            let seen = unasked.withLock { $0 }
            return seen.contains { $0.kind == .methodReturn && $0.replySerial == control.serial } ? seen : nil
        }
        #expect(seen.count == 1, "\(seen.count - 1) replies to calls that asked for none, e.g. \(seen.first.map { $0.errorName ?? "method return" } ?? "")")
        #expect(seen.first?.arguments == [.uint32(3)])
    }
}
