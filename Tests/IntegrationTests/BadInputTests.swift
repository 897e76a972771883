import BackgroundFetchContract
import DBus
import Foundation
import TestKit
import Testing

/// Every malformed call gets the contract's error, names the problem, and changes nothing.
@Suite(.timeLimit(.minutes(2)))
struct BadInputTests {
    func expectInvalid(_ f: Fixture, _ member: String, _ arguments: [DBusValue], mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = f.client.error(member, arguments)
        #expect(error?.name == DBusError.Name.invalidArgs, "\(member) \(arguments)", sourceLocation: sourceLocation)
        #expect(error?.message.contains(text) == true, "\(error?.message ?? "no error") should mention \(text)", sourceLocation: sourceLocation)
    }

    @Test func badNamesOptionsAndIntervals() throws {
        let f = try Fixture()
        let register = "RegisterTask"
        expectInvalid(f, register, [.string(""), .vardict([:])], mentioning: "empty")
        expectInvalid(f, register, [.string(String(repeating: "a", count: 256)), .vardict([:])], mentioning: "256")
        expectInvalid(f, register, [.string("with space"), .vardict([:])], mentioning: "' '")
        expectInvalid(f, register, [.string("slash/y"), .vardict([:])], mentioning: "'/'")
        expectInvalid(f, register, [.string("ok"), .vardict(["bogus": .uint32(1)])], mentioning: "bogus")
        expectInvalid(f, register, [.string("ok"), .vardict(["minimumInterval": .int32(60)])], mentioning: "minimumInterval")
        expectInvalid(f, register, [.string("ok"), .vardict(["stopOnTerminate": .string("no")])], mentioning: "stopOnTerminate")
        expectInvalid(f, register, [.string("ok"), .vardict(["minimumInterval": .uint32(0)])], mentioning: "0")
        expectInvalid(f, register, [.string("ok"), .vardict(["minimumInterval": .uint32(604_801)])], mentioning: "604801")
        expectInvalid(f, register, [.string("ok"), .vardict(["startOnBoot": .bool(true)])], mentioning: "stopOnTerminate")
        expectInvalid(f, "UnregisterTask", [.string("")], mentioning: "empty")
        expectInvalid(f, "IsTaskRegistered", [.string("a b")], mentioning: "' '")
        expectInvalid(f, "TriggerFetch", [.string("")], mentioning: "empty")
        // 255 bytes of allowed characters are fine.
        try f.client.register(String(repeating: "x", count: 250) + "A9_.:")
        #expect(try f.client.tasks().count == 1)
    }

    /// A caller's string reaches an error message escaped and cut: a long
    /// option key cannot make a 40,000-byte reply, and a task name with a
    /// newline and ESC cannot forge a line of anyone's log.
    @Test func callerStringsComeBackEscapedAndCut() throws {
        let f = try Fixture()
        let key = String(repeating: "k", count: 40_000)
        let long = try #require(f.client.error("RegisterTask", [.string("ok"), .vardict([key: .uint32(1)])]))
        #expect(long.name == DBusError.Name.invalidArgs)
        #expect(long.message.utf8.count < 400, "\(long.message.utf8.count) bytes")
        #expect(long.message.contains("cut at 256 of 40000 bytes"))
        let forged = try #require(f.client.error("UnregisterTask", [.string("t\n\u{1b}[31mforged")]))
        #expect(!forged.message.contains("\n") && !forged.message.contains("\u{1b}"), "raw control characters: \(forged.message)")
        #expect(forged.message.contains(#"t\n\x1b[31mforged"#))
        // The same rule, on its own.
        #expect(CallerText.shown("a\tb\u{7f}\u{85}") == #"a\tb\x7f\u{85}"#)
        #expect(CallerText.shown(String(repeating: "é", count: 200)).utf8.count <= 256 + 40)
    }

    @Test func wrongSignaturesAreInvalidArgs() throws {
        let f = try Fixture()
        let cases: [(String, [DBusValue])] = [
            ("RegisterTask", [.string("a")]),
            ("RegisterTask", [.uint32(1), .vardict([:])]),
            ("RegisterTask", [.string("a"), .vardict([:]), .string("extra")]),
            ("GetStatus", [.string("x")]),
            ("FinishFetch", [.uint32(1), .uint32(1)]),
            ("SetMinimumInterval", [.int32(5)]),
        ]
        for (member, arguments) in cases {
            let error = f.client.error(member, arguments)
            #expect(error?.name == DBusError.Name.invalidArgs, "\(member)")
            #expect(error?.message.contains("signature") == true)
        }
        #expect(try f.client.tasks().isEmpty)
    }

    @Test func unknownMembersInterfacesAndObjects() throws {
        let f = try Fixture()
        #expect(f.client.error("Nope")?.name == DBusError.Name.unknownMethod)
        #expect(f.client.error("GetStatus", interface: "org.example.Nope")?.name == DBusError.Name.unknownInterface)
        let message = try Message.methodCall(
            destination: ServiceClient.name, path: "/org/bgfetch/Other", interface: ServiceClient.app, member: "GetStatus")
        let error = #expect(throws: DBusError.self) { try f.client.connection.callBlocking(message, timeoutMilliseconds: 5000) }
        #expect(error?.name == DBusError.Name.unknownObject)
        // Without an interface field a unique member still works.
        #expect(try f.client.call("GetStatus", interface: nil) == [.uint32(3)])
    }

    @Test func theDaemonSurvivesAFloodOfGarbage() throws {
        let f = try Fixture()
        let nested: DBusValue = (0..<30).reduce(DBusValue.string("deep")) { inner, _ in .variant(inner) }
        let junk: [[DBusValue]] = [
            [.string(String(repeating: "z", count: 50_000)), .vardict([:])],
            [.string("a"), .vardict(["minimumInterval": nested])],
            [.string("a"), .array(element: "{ss}", [])],
            [.uint64(.max), .uint32(.max)],
        ]
        for arguments in junk {
            for member in ["RegisterTask", "FinishFetch", "TriggerFetch", "Nope"] {
                _ = f.client.error(member, arguments)
            }
        }
        // A call that asks for no reply must not break anything either.
        let noReply = try Message.methodCall(destination: ServiceClient.name, path: ServiceClient.path, interface: ServiceClient.app, member: "GetStatus")
        f.client.connection.send(noReply)
        #expect(try f.client.call("GetStatus") == [.uint32(3)])
        #expect(try f.client.tasks().isEmpty)
    }

    @Test func limitsFromTheConfigFile() throws {
        let f = try Fixture(configFile: "[Limits]\nTasksPerApp=2\nTasksPerUser=3\n")
        try f.client.register("a")
        try f.client.register("b")
        let error = f.client.error("RegisterTask", [.string("c"), .vardict([:])])
        #expect(error?.name == "org.bgfetch.BackgroundFetch1.Error.LimitExceeded")
        #expect(error?.message.contains("2") == true)
        // Re-registering an existing task is not a new one.
        try f.client.register("a", .options(interval: 100))
        let other = try f.app("org.example.Feeds")
        defer { other.close() }
        try other.register("x")
        #expect(other.error("RegisterTask", [.string("y"), .vardict([:])])?.name == "org.bgfetch.BackgroundFetch1.Error.LimitExceeded")
        #expect(try f.client.tasks().keys.sorted() == ["a", "b"])
        #expect(try other.tasks().keys.sorted() == ["x"])
    }
}
