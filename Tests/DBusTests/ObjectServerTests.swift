import Testing

@testable import DBus

/// Dispatch by the declared table, without a bus: every call gets one reply.
@Suite(.timeLimit(.minutes(1)))
struct ObjectServerTests {
    let server = ObjectServer(
        path: "/org/example/Thing",
        interfaces: [
            DBusInterface(
                name: "org.example.Thing",
                methods: [
                    DBusMethod("Echo", in: [.init("text", "s")], out: [.init("text", "s")]) { call in [call.arguments[0]] },
                    DBusMethod("Fail") { _ throws(DBusError) in throw DBusError("org.example.Error.Nope", "no") },
                    DBusMethod("Size", out: [.init("size", "u")], query: true) { _ in [.uint32(7)] },
                ],
                signals: [DBusSignal("Changed", [.init("what", "s")])],
                properties: [DBusProperty("Size", "u") { .uint32(7) }])
        ])

    func reply(_ member: String, _ arguments: [DBusValue] = [], interface: String? = "org.example.Thing", path: String = "/org/example/Thing") throws -> Message {
        let call = try Message.methodCall(destination: nil, path: path, interface: interface, member: member, arguments)
        call.assignSerial(1)
        return try #require(server.reply(to: call))
    }

    @Test func callsTheHandler() throws {
        #expect(try reply("Echo", [.string("hi")]).arguments == [.string("hi")])
        #expect(try reply("Echo", [.string("hi")], interface: nil).arguments == [.string("hi")])
        #expect(try reply("Fail").errorName == "org.example.Error.Nope")
    }

    func message(_ member: String, interface: String? = "org.example.Thing", path: String = "/org/example/Thing") throws -> Message {
        try Message.methodCall(destination: nil, path: path, interface: interface, member: member)
    }

    @Test func aDeclaredMethodIsFoundOnceAndSaysIfItIsAQuery() throws {
        let size = try #require(server.method(of: try message("Size")))
        #expect(size.isQuery)
        let call = try message("Size")
        call.assignSerial(1)
        #expect(server.reply(to: call, calling: size)?.arguments == [.uint32(7)])
        #expect(server.method(of: try message("Echo"))?.isQuery == false)
        #expect(server.method(of: try message("Nope")) == nil)
        #expect(server.method(of: try message("Size", path: "/elsewhere")) == nil)
        #expect(server.method(of: try message("Size", interface: "org.example.Other")) == nil)
        // Without an interface the server would have to search: left to reply(to:).
        #expect(server.method(of: try message("Size", interface: nil)) == nil)
        #expect(server.method(of: try message("Get", interface: "org.freedesktop.DBus.Properties")) == nil)
    }

    @Test func unknownThingsGetTheirStandardErrors() throws {
        #expect(try reply("Nope").errorName == DBusError.Name.unknownMethod)
        #expect(try reply("Echo", interface: "org.example.Other").errorName == DBusError.Name.unknownInterface)
        #expect(try reply("Echo", path: "/elsewhere").errorName == DBusError.Name.unknownObject)
        let wrong = try reply("Echo", [.uint32(1)])
        #expect(wrong.errorName == DBusError.Name.invalidArgs)
        #expect(wrong.error?.message.contains("'s'") == true)
    }

    @Test func propertiesAndIntrospection() throws {
        let get = try reply("Get", [.string("org.example.Thing"), .string("Size")], interface: "org.freedesktop.DBus.Properties")
        #expect(get.arguments == [.variant(.uint32(7))])
        let all = try reply("GetAll", [.string("")], interface: "org.freedesktop.DBus.Properties")
        #expect(all.arguments.first?.vardictValue == ["Size": .uint32(7)])
        let set = try reply("Set", [.string("org.example.Thing"), .string("Size"), .variant(.uint32(1))], interface: "org.freedesktop.DBus.Properties")
        #expect(set.errorName == DBusError.Name.propertyReadOnly)
        let missing = try reply("Get", [.string("org.example.Thing"), .string("Nope")], interface: "org.freedesktop.DBus.Properties")
        #expect(missing.errorName == DBusError.Name.unknownProperty)

        let xml = try #require(try reply("Introspect", interface: "org.freedesktop.DBus.Introspectable").arguments.first?.stringValue)
        #expect(xml.contains("<method name=\"Echo\">"))
        #expect(xml.contains("<arg name=\"text\" type=\"s\" direction=\"in\"/>"))
        #expect(xml.contains("<signal name=\"Changed\">"))
        #expect(xml.contains("<property name=\"Size\" type=\"u\" access=\"read\"/>"))
        #expect(xml.contains("org.freedesktop.DBus.Peer"))
    }

    @Test func pathsAboveTheObjectIntrospectTheirChild() throws {
        let root = try reply("Introspect", interface: "org.freedesktop.DBus.Introspectable", path: "/")
        #expect(root.arguments.first?.stringValue?.contains("<node name=\"org\"/>") == true)
        let mid = try reply("Introspect", interface: "org.freedesktop.DBus.Introspectable", path: "/org/example")
        #expect(mid.arguments.first?.stringValue?.contains("<node name=\"Thing\"/>") == true)
        #expect(try reply("Echo", path: "/org/example").errorName == DBusError.Name.unknownObject)
        // A parent lists only what it answers: Introspectable and Peer, not Properties.
        let parentXML = try #require(mid.arguments.first?.stringValue)
        #expect(parentXML.contains("org.freedesktop.DBus.Introspectable") && parentXML.contains("org.freedesktop.DBus.Peer"))
        #expect(!parentXML.contains("org.freedesktop.DBus.Properties"))
        #expect(try reply("GetAll", [.string("org.example.Thing")], interface: "org.freedesktop.DBus.Properties", path: "/org/example").errorName != nil)
        // The object itself lists Properties, and answers them.
        let objectXML = try reply("Introspect", interface: "org.freedesktop.DBus.Introspectable", path: "/org/example/Thing")
        #expect(objectXML.arguments.first?.stringValue?.contains("org.freedesktop.DBus.Properties") == true)
    }

    @Test func noReplyWhenNoneIsExpected() throws {
        let call = try Message.methodCall(destination: nil, path: "/org/example/Thing", interface: "org.example.Thing", member: "Echo", [.string("x")], expectsReply: false)
        call.assignSerial(1)
        #expect(server.reply(to: call) == nil)
    }
}
