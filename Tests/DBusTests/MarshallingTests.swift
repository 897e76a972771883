import Testing

@testable import DBus

/// Values written into a message read back exactly as they went in.
@Suite(.timeLimit(.minutes(1)))
struct MarshallingTests {
    func roundTrip(_ values: [DBusValue]) throws -> [DBusValue] {
        let message = try Message.methodCall(destination: "org.example.X", path: "/x", interface: "org.example.X", member: "M", values)
        return message.arguments
    }

    @Test func basicTypes() throws {
        let values: [DBusValue] = [
            .byte(255), .bool(true), .bool(false), .int16(-3), .uint16(65535), .int32(-7), .uint32(.max),
            .int64(.min), .uint64(.max), .double(2.5), .string("héllo"), .objectPath("/a/b"), .signature("a{sv}"),
        ]
        #expect(try roundTrip(values) == values)
    }

    @Test func containers() throws {
        let values: [DBusValue] = [
            .vardict(["a": .uint32(1), "b": .bool(true), "c": .string("x")]),
            .array(element: "(sa{sv})", [.structure([.string("task"), .vardict(["k": .uint64(9)])])]),
            .array(element: "s", []),
            .array(element: "(ttu)", []),
            .variant(.variant(.int32(1))),
        ]
        #expect(try roundTrip(values) == values)
    }

    @Test func signatures() {
        #expect(DBusValue.vardict([:]).signature == "a{sv}")
        #expect(DBusValue.structure([.string(""), .uint64(0), .uint32(0)]).signature == "(stu)")
        #expect(DBusValue.array(element: "(ttu)", []).signature == "a(ttu)")
    }

    @Test func readingHelpers() {
        let dict = DBusValue.vardict(["n": .uint32(5), "f": .bool(false)])
        #expect(dict.vardictValue?["n"] == .uint32(5))
        #expect(DBusValue.string("x").vardictValue == nil)
        #expect(DBusValue.variant(.variant(.string("in"))).unwrapped == .string("in"))
        let repeated = DBusValue.array(element: "{sv}", [.dictEntry(.string("a"), .variant(.bool(true))), .dictEntry(.string("a"), .variant(.bool(false)))])
        #expect(repeated.vardictValue == nil)
    }

    @Test func textLibdbusWouldAbortOnIsRefused() throws {
        #expect(throws: DBusError.self) { try roundTrip([.string("a\u{0}b")]) }
        #expect(throws: DBusError.self) { try roundTrip([.objectPath("not a path")]) }
        #expect(throws: DBusError.self) { try roundTrip([.signature("a{")]) }
        #expect(throws: DBusError.self) { try roundTrip([.array(element: "s", [.uint32(1)])]) }
        #expect(throws: DBusError.self) { try roundTrip([.structure([])]) }
    }

    @Test func headerNamesAreValidated() {
        #expect(throws: DBusError.self) { try Message.methodCall(destination: nil, path: "x", interface: nil, member: "M") }
        #expect(throws: DBusError.self) { try Message.methodCall(destination: nil, path: "/x", interface: "bad", member: "M") }
        #expect(throws: DBusError.self) { try Message.signal(path: "/x", interface: "a.b", member: "1bad") }
        #expect(Message.isValidBusName("org.example.App"))
        #expect(!Message.isValidBusName("org..x"))
    }

    @Test func errorRepliesCarryNameAndMessage() throws {
        let call = try Message.methodCall(destination: nil, path: "/x", interface: "a.b", member: "M")
        #expect(call.makeErrorReply(DBusError("org.example.Error.Boom", "unsent")) == nil)
        call.assignSerial(7)
        let reply = try #require(call.makeErrorReply(DBusError("org.example.Error.Boom", "it broke")))
        #expect(reply.kind == .error)
        #expect(reply.error == DBusError("org.example.Error.Boom", "it broke"))
        // An invalid error name falls back to Failed rather than aborting.
        let fallback = try #require(call.makeErrorReply(DBusError("not valid", "m")))
        #expect(fallback.errorName == DBusError.Name.failed)
    }
}
