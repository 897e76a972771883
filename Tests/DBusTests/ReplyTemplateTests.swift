import CDBus
import Testing

@testable import DBus

/// A reply copied from a template (``ReplyTemplates``) says what the reply
/// libdbus makes itself says: the same header fields and flags (perhaps in
/// another order, which D-Bus leaves free) and the same body.
@Suite(.timeLimit(.minutes(1)))
struct ReplyTemplateTests {
    /// A received-looking call: a serial, and a sender as the bus stamps it.
    func call(sender: String?) throws -> Message {
        let call = try Message.methodCall(destination: "org.example.X", path: "/x", interface: "org.example.X", member: "M")
        call.assignSerial(41)
        if let sender { dbus_message_set_sender(call.raw, sender) }
        return call
    }

    /// What a reply says, read back from its bytes as a receiver reads them
    /// (so the bytes are valid too).
    struct Said: Equatable {
        var type: Int32, noReply: Bool, autoStart: Bool, replySerial: UInt32
        var destination: String?, sender: String?, signature: String, body: [DBusValue]
    }

    func said(_ message: Message) throws -> Said {
        dbus_message_set_serial(message.raw, 7)
        var data: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        #expect(dbus_message_marshal(message.raw, &data, &length) != 0)
        defer { dbus_free(data) }
        var error = DBusError()
        dbus_error_init(&error)
        let read = Message(owning: try #require(dbus_message_demarshal(data, length, &error), "not valid on the wire"))
        let raw = read.raw
        return Said(
            type: dbus_message_get_type(raw), noReply: dbus_message_get_no_reply(raw) != 0,
            autoStart: dbus_message_get_auto_start(raw) != 0, replySerial: dbus_message_get_reply_serial(raw),
            destination: dbus_message_get_destination(raw).map { String(cString: $0) },
            sender: dbus_message_get_sender(raw).map { String(cString: $0) },
            signature: String(cString: dbus_message_get_signature(raw)), body: read.arguments)
    }

    func libdbusReply(to call: Message, _ value: DBusValue) throws -> Message {
        let reply = Message(owning: try #require(dbus_message_new_method_return(call.raw)))
        try reply.append([value])
        return reply
    }

    @Test(arguments: [DBusValue.uint32(3), .uint32(0), .bool(true), .bool(false)])
    func aTemplateReplyIsTheReplyLibdbusMakes(value: DBusValue) throws {
        #expect(ReplyTemplates.Key([value]) != nil)
        for sender in [":1.42", ":1.1234567", nil] {
            let call = try call(sender: sender)
            // Twice: made with the template, then copied from it.
            for _ in 0..<2 {
                let reply = try call.makeReply([value])
                let expected = try said(try libdbusReply(to: call, value))
                #expect(try said(reply) == expected)
                #expect(expected.replySerial == 41 && expected.destination == sender && expected.body == [value])
            }
        }
    }

    @Test func otherRepliesAreMadeFresh() throws {
        #expect(ReplyTemplates.Key([.uint32(16)]) == nil)
        #expect(ReplyTemplates.Key([.uint64(1)]) == nil)
        #expect(ReplyTemplates.Key([.bool(true), .bool(true)]) == nil)
        let call = try call(sender: ":1.5")
        let reply = try call.makeReply([.uint32(99)])
        #expect(try said(reply) == (try said(try libdbusReply(to: call, .uint32(99)))))
    }
}
