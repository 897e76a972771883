import DBus
import Foundation
import Synchronization
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

    /// A burst of calls that ask for no reply, far more than may wait at
    /// once: the ones over the limit are dropped, never answered, and the
    /// connection is served normally afterwards.
    @Test func callsWithoutReplyAreNeverAnsweredEvenWhenRefused() throws {
        let f = try Fixture()
        let flooder = try f.bus.connect()
        defer { flooder.close() }
        _ = try flooder.requestName("org.example.Flooder")
        let unasked = Mutex<[String]>([])
        flooder.setMessageHandler { message in
            guard message.kind == .error || message.kind == .methodReturn else { return false }
            unasked.withLock { $0.append(message.errorName ?? "method return") }
            return true
        }
        let getStatus = { (expectsReply: Bool) throws -> Message in
            try Message.methodCall(
                destination: ServiceClient.name, path: ServiceClient.path, interface: ServiceClient.app, member: "GetStatus", [],
                expectsReply: expectsReply)
        }
        _ = try flooder.callBlocking(try getStatus(true))  // known to the daemon before the burst
        for _ in 0..<5000 {
            let message = try getStatus(false)
            _ = flooder.send(message)
        }
        // While its queue is full even a call that wants a reply is refused,
        // with a reply; once the backlog is served it is answered.
        var status: [DBusValue] = []
        var refusals = 0
        let deadline = Date().addingTimeInterval(20)
        while status.isEmpty, Date() < deadline {
            do {
                status = try flooder.callBlocking(try getStatus(true), timeoutMilliseconds: 20_000).arguments
            } catch let error as DBusError where error.name == "org.bgfetch.BackgroundFetch1.Error.LimitExceeded" {
                refusals += 1
                usleep(10_000)
            }
        }
        #expect(status == [.uint32(3)], "after \(refusals) refusals")
        usleep(200_000)
        let replies = unasked.withLock { $0 }
        #expect(replies.count == 0, "\(replies.count) replies to calls that asked for none, e.g. \(replies.first ?? "")")
    }
}
