/// Serves one object path from its interface declarations.
///
/// Every method call that reaches it gets exactly one reply: the handler's
/// return, the error it threw, or a standard error for an unknown object,
/// interface, member or signature. It answers `Introspectable` and
/// `Properties` for the object and introspects the paths above it, so tools
/// like `busctl tree` can walk down to it. (libdbus answers `Peer` itself.)
public final class ObjectServer: Sendable {
    public let path: String
    public let interfaces: [DBusInterface]
    /// Each interface's methods, in declaration order. Found by comparing C
    /// names in turn: for a dozen methods that costs less than making the
    /// member a String and hashing it.
    private let methods: [(interface: CName, members: [Entry])]
    private let cPath: CName

    public init(path: String, interfaces: [DBusInterface]) {
        self.path = path
        self.interfaces = interfaces
        cPath = CName(path)
        methods = interfaces.map { interface in
            (CName(interface.name), interface.methods.map(Entry.init))
        }
    }

    private static let introspectable = CName("org.freedesktop.DBus.Introspectable")
    private static let properties = CName("org.freedesktop.DBus.Properties")

    /// A method as the server calls it, held by reference so that finding
    /// it copies nothing, with its input signature ready for libdbus.
    final class Entry: Sendable {
        let method: DBusMethod
        let name: CName
        let signature: CName
        init(_ method: DBusMethod) {
            self.method = method
            name = CName(method.name)
            signature = CName(method.inputSignature)
        }
    }

    /// Handles a message if it is a method call; returns the reply to send
    /// (nil when the call asked for none or the message is not a call).
    /// `found`: what ``method(of:)`` found for this same message, if it was asked.
    public func reply(to message: Message, calling found: Found? = nil) -> Message? {
        guard message.kind == .methodCall else { return nil }
        assert(found.map { $0.entry.name.matches(message.route.member) } ?? true, "found for another message")
        let reply: Message?
        do throws(DBusError) {
            let values = if let found { try call(found.entry, message) } else { try dispatch(message) }
            reply = try message.makeReply(values)
        } catch {
            reply = message.makeErrorReply(error)
        }
        return message.expectsReply ? reply : nil
    }

    /// A declared method a call was found to name, as ``method(of:)`` found
    /// it: ``reply(to:calling:)`` then calls it without looking again.
    public struct Found: Sendable {
        let entry: Entry
        /// Whether it was declared a query (``DBusMethod/isQuery``).
        public var isQuery: Bool { entry.method.isQuery }
    }

    /// The declared method `message` calls, if it names one of this
    /// object's interfaces and one of its methods; nil for anything else
    /// (which ``reply(to:calling:)`` routes, answers or refuses).
    public func method(of message: Message) -> Found? {
        let route = message.route
        guard let interface = route.interface, cPath.matches(route.path), let table = table(named: interface),
            let entry = Self.entry(named: route.member, in: table.members)
        else { return nil }
        return Found(entry: entry)
    }

    /// The declared interface named `interface` (a field libdbus holds).
    /// Both lookups are asked on every call: inlined, they cost no retains.
    @inline(__always) private func table(named interface: UnsafePointer<CChar>) -> (interface: CName, members: [Entry])? {
        methods.first { $0.interface.matches(interface) }
    }

    /// The method of `members` named `member` (a field libdbus holds).
    @inline(__always) private static func entry(named member: UnsafePointer<CChar>?, in members: [Entry]) -> Entry? {
        members.first { $0.name.matches(member) }
    }

    /// Path, interface and member are compared in place: a call costs no
    /// String for any of them. (The message, borrowed, outlives `route`.)
    private func dispatch(_ message: Message) throws(DBusError) -> [DBusValue] {
        let route = message.route
        guard cPath.matches(route.path) else {
            let messagePath = message.path ?? ""
            if let children = childNode(of: messagePath) {
                return try introspectParent(message, member: message.member ?? "", child: children)
            }
            // A valid path is plain ASCII, but may be long: shown cut to 256 bytes.
            let shown = messagePath.utf8.count <= 256 ? messagePath : messagePath.prefix(256) + "…[cut]"
            throw DBusError(DBusError.Name.unknownObject, "no object at path '\(shown)'")
        }
        guard let interface = route.interface else {
            // No interface field: the member must be unique among our interfaces.
            let matches = methods.compactMap { Self.entry(named: route.member, in: $0.members) }
            guard matches.count == 1, let entry = matches.first else {
                let member = message.member ?? ""
                if matches.isEmpty, member == "Introspect" {
                    return [.string(interfaces.introspectionXML())]
                }
                throw matches.isEmpty
                    ? unknownMethod(member, nil)
                    : DBusError(DBusError.Name.unknownMethod, "member '\(member)' is ambiguous without an interface")
            }
            return try call(entry, message)
        }
        if let table = table(named: interface) {
            guard let entry = Self.entry(named: route.member, in: table.members) else {
                throw unknownMethod(message.member ?? "", table.interface.text)
            }
            return try call(entry, message)
        }
        let member = message.member ?? ""
        if Self.introspectable.matches(interface) {
            guard member == "Introspect" else { throw unknownMethod(member, Self.introspectable.text) }
            try expect(message, "", member)
            return [.string(interfaces.introspectionXML())]
        }
        if Self.properties.matches(interface) {
            return try properties(message, member: member)
        }
        throw DBusError(DBusError.Name.unknownInterface, "object '\(path)' has no interface '\(message.interface ?? "")'")
    }

    private func call(_ entry: Entry, _ message: Message) throws(DBusError) -> [DBusValue] {
        try expect(message, entry.signature, entry.method.name)
        let arguments = entry.method.inputs.isEmpty ? [] : message.arguments
        return try entry.method.handler(MethodCall(message: message, arguments: arguments, sender: message.sender ?? ""))
    }

    private func expect(_ message: Message, _ signature: CName, _ member: String) throws(DBusError) {
        guard message.has(signature: signature) else {
            throw .invalidArgs("\(member) takes arguments of signature '\(signature.text)', not '\(message.signature)'")
        }
    }

    private func expect(_ message: Message, _ signature: String, _ member: String) throws(DBusError) {
        try expect(message, CName(signature), member)
    }

    private func unknownMethod(_ member: String, _ interface: String?) -> DBusError {
        DBusError(
            DBusError.Name.unknownMethod,
            "no method '\(member)'" + (interface.map { " in interface '\($0)'" } ?? "") + " at '\(path)'")
    }

    // MARK: Properties

    private func properties(_ message: Message, member: String) throws(DBusError) -> [DBusValue] {
        let arguments = message.arguments
        switch member {
        case "Get":
            try expect(message, "ss", member)
            let property = try findProperty(arguments[0].stringValue ?? "", arguments[1].stringValue ?? "")
            return [.variant(property.get())]
        case "GetAll":
            try expect(message, "s", member)
            let name = arguments[0].stringValue ?? ""
            // An empty interface name asks for the properties of every interface.
            let sources = try findInterface(name).map { [$0] } ?? interfaces
            var all: [String: DBusValue] = [:]
            for property in sources.flatMap(\.properties) { all[property.name] = property.get() }
            return [.vardict(all)]
        case "Set":
            try expect(message, "ssv", member)
            let property = try findProperty(arguments[0].stringValue ?? "", arguments[1].stringValue ?? "")
            throw DBusError(DBusError.Name.propertyReadOnly, "property '\(property.name)' is read-only")
        default:
            throw unknownMethod(member, Self.properties.text)
        }
    }

    /// The interface by name; an empty name means none (GetAll of all).
    private func findInterface(_ name: String) throws(DBusError) -> DBusInterface? {
        if name.isEmpty { return nil }
        guard let interface = interfaces.first(where: { $0.name == name }) else {
            throw DBusError(DBusError.Name.unknownInterface, "object '\(path)' has no interface '\(name)'")
        }
        return interface
    }

    private func findProperty(_ interfaceName: String, _ name: String) throws(DBusError) -> DBusProperty {
        let candidates = try findInterface(interfaceName).map { [$0] } ?? interfaces
        guard let property = candidates.lazy.flatMap(\.properties).first(where: { $0.name == name }) else {
            throw DBusError(DBusError.Name.unknownProperty, "no property '\(name)'" + (interfaceName.isEmpty ? "" : " in interface '\(interfaceName)'"))
        }
        return property
    }

    // MARK: Paths above the object

    /// For a path above ours, the name of the next node down.
    private func childNode(of ancestor: String) -> String? {
        let prefix = ancestor == "/" ? "/" : ancestor + "/"
        guard path.hasPrefix(prefix) else { return nil }
        return path.dropFirst(prefix.count).split(separator: "/").first.map(String.init)
    }

    private func introspectParent(_ message: Message, member: String, child: String) throws(DBusError) -> [DBusValue] {
        guard member == "Introspect", message.interface == nil || message.interface == "org.freedesktop.DBus.Introspectable"
        else {
            throw DBusError(DBusError.Name.unknownObject, "no object at path '\(message.path ?? "")'")
        }
        try expect(message, "", member)
        return [.string([DBusInterface]().introspectionXML(isObject: false, children: [child]))]
    }
}
