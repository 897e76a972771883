/// An interface as a service declares it once: its methods with their
/// handlers, its signals and its properties. ``ObjectServer`` dispatches from
/// it and prints introspection XML from it.
public struct DBusInterface: Sendable {
    public var name: String
    public var methods: [DBusMethod]
    public var signals: [DBusSignal]
    public var properties: [DBusProperty]

    public init(name: String, methods: [DBusMethod] = [], signals: [DBusSignal] = [], properties: [DBusProperty] = []) {
        self.name = name
        self.methods = methods
        self.signals = signals
        self.properties = properties
    }
}

/// A named, typed argument.
public struct DBusArgument: Sendable, Equatable {
    public var name: String
    public var signature: String

    public init(_ name: String, _ signature: String) {
        self.name = name
        self.signature = signature
    }
}

/// An incoming call, as a method handler sees it.
public struct MethodCall: Sendable {
    public let message: Message
    public let arguments: [DBusValue]
    /// The caller's unique name.
    public let sender: String
}

public struct DBusMethod: Sendable {
    public typealias Handler = @Sendable (MethodCall) throws(DBusError) -> [DBusValue]

    public var name: String
    public let inputs: [DBusArgument]
    public let outputs: [DBusArgument]
    public var handler: Handler
    /// The signature a call must carry: its inputs' types, joined once here
    /// rather than on every call.
    public let inputSignature: String
    /// A query: it stores nothing and costs little whatever the state, so a
    /// server that makes calls wait their turn may answer it at once
    /// (``ObjectServer/Found/isQuery``). Not in the introspection data.
    public let isQuery: Bool

    public init(
        _ name: String, in inputs: [DBusArgument] = [], out outputs: [DBusArgument] = [], query: Bool = false,
        handler: @escaping Handler
    ) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.handler = handler
        inputSignature = inputs.map(\.signature).joined()
        isQuery = query
    }
}

public struct DBusSignal: Sendable, Equatable {
    public var name: String
    public var arguments: [DBusArgument]

    public init(_ name: String, _ arguments: [DBusArgument] = []) {
        self.name = name
        self.arguments = arguments
    }
}

/// A read-only property.
public struct DBusProperty: Sendable {
    public var name: String
    public var signature: String
    public var get: @Sendable () -> DBusValue

    public init(_ name: String, _ signature: String, get: @escaping @Sendable () -> DBusValue) {
        self.name = name
        self.signature = signature
        self.get = get
    }
}

// MARK: - Introspection XML

extension DBusInterface {
    /// The standard interfaces every node answers: `Peer` (libdbus answers
    /// it on any path) and `Introspectable`.
    static let nodeXML = """
          <interface name="org.freedesktop.DBus.Peer">
            <method name="Ping"/>
            <method name="GetMachineId">
              <arg name="machine_uuid" type="s" direction="out"/>
            </method>
          </interface>
          <interface name="org.freedesktop.DBus.Introspectable">
            <method name="Introspect">
              <arg name="xml_data" type="s" direction="out"/>
            </method>
          </interface>

        """

    /// `Properties`, which only the served object answers.
    static let propertiesXML = """
          <interface name="org.freedesktop.DBus.Properties">
            <method name="Get">
              <arg name="interface_name" type="s" direction="in"/>
              <arg name="property_name" type="s" direction="in"/>
              <arg name="value" type="v" direction="out"/>
            </method>
            <method name="GetAll">
              <arg name="interface_name" type="s" direction="in"/>
              <arg name="properties" type="a{sv}" direction="out"/>
            </method>
            <method name="Set">
              <arg name="interface_name" type="s" direction="in"/>
              <arg name="property_name" type="s" direction="in"/>
              <arg name="value" type="v" direction="in"/>
            </method>
            <signal name="PropertiesChanged">
              <arg name="interface_name" type="s"/>
              <arg name="changed_properties" type="a{sv}"/>
              <arg name="invalidated_properties" type="as"/>
            </signal>
          </interface>

        """

    /// This interface as introspection XML, indented for a `<node>`.
    public var introspectionXML: String {
        var xml = "  <interface name=\"\(name)\">\n"
        for method in methods {
            let arguments = method.inputs.map { ($0, "in") } + method.outputs.map { ($0, "out") }
            if arguments.isEmpty {
                xml += "    <method name=\"\(method.name)\"/>\n"
                continue
            }
            xml += "    <method name=\"\(method.name)\">\n"
            for (argument, direction) in arguments {
                xml += "      <arg name=\"\(argument.name)\" type=\"\(escape(argument.signature))\" direction=\"\(direction)\"/>\n"
            }
            xml += "    </method>\n"
        }
        for signal in signals {
            xml += "    <signal name=\"\(signal.name)\">\n"
            for argument in signal.arguments {
                xml += "      <arg name=\"\(argument.name)\" type=\"\(escape(argument.signature))\"/>\n"
            }
            xml += "    </signal>\n"
        }
        for property in properties {
            xml += "    <property name=\"\(property.name)\" type=\"\(escape(property.signature))\" access=\"read\"/>\n"
        }
        xml += "  </interface>\n"
        return xml
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

extension Array where Element == DBusInterface {
    /// A whole `<node>` document for an object with these interfaces; a
    /// node that is only a parent on the way to one (`isObject` false)
    /// answers no `Properties`, so lists none.
    public func introspectionXML(includingStandard: Bool = true, isObject: Bool = true, children: [String] = []) -> String {
        var xml = """
            <!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
             "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
            <node>

            """
        if includingStandard { xml += DBusInterface.nodeXML + (isObject ? DBusInterface.propertiesXML : "") }
        for interface in self { xml += interface.introspectionXML }
        for child in children { xml += "  <node name=\"\(child)\"/>\n" }
        xml += "</node>\n"
        return xml
    }
}
