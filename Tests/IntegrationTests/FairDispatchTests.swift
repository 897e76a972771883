import DBus
import Foundation
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
                    member: "RegisterTask", [.string("t\(n)"), .vardict(.options(interval: 3600, stopOnTerminate: false))])
                message.expectsReply = false
                _ = app.connection.send(message)
            }
            app.close()
            var held = -1
            let deadline = Date().addingTimeInterval(10)
            repeat {
                let items = try f.client.call("ListTasks", interface: ServiceClient.manager).first?.arrayValue ?? []
                held = items.filter { $0.structValue?.first?.stringValue == appID }.count
                if held == 60 { break }
                usleep(20_000)
            } while Date() < deadline
            #expect(held == 60, "round \(round): \(held) of the 60 tasks registered just before leaving")
        }
    }
}
