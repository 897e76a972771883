/// The members an introspection document declares, read by simple scanning
/// (the document is the service's own, so no general XML parser is needed).
struct IntrospectedMethod: Sendable {
    let interface: String
    let name: String
    /// The signature of each input argument, in order.
    let inputs: [String]
}

struct IntrospectedProperty: Sendable {
    let interface: String
    let name: String
    let type: String
}

struct Introspection: Sendable {
    var methods: [IntrospectedMethod] = []
    var properties: [IntrospectedProperty] = []
    var children: [String] = []

    init(xml: String) {
        var interface = ""
        var method: String?
        var inputs: [String] = []
        var depth = 0
        for tag in Self.tags(in: xml) {
            let attributes = Self.attributes(of: tag)
            if tag.hasPrefix("interface") {
                interface = attributes["name"] ?? ""
            } else if tag.hasPrefix("method") {
                method = attributes["name"]
                inputs = []
                if tag.hasSuffix("/") {
                    methods.append(IntrospectedMethod(interface: interface, name: method ?? "", inputs: []))
                    method = nil
                }
            } else if tag.hasPrefix("/method") {
                if let method { methods.append(IntrospectedMethod(interface: interface, name: method, inputs: inputs)) }
                method = nil
            } else if tag.hasPrefix("arg"), method != nil {
                if (attributes["direction"] ?? "in") == "in" { inputs.append(attributes["type"] ?? "") }
            } else if tag.hasPrefix("property") {
                properties.append(IntrospectedProperty(interface: interface, name: attributes["name"] ?? "", type: attributes["type"] ?? ""))
            } else if tag.hasPrefix("node") {
                depth += 1
                if depth > 1, let name = attributes["name"] { children.append(name) }
                if tag.hasSuffix("/") { depth -= 1 }
            } else if tag.hasPrefix("/node") {
                depth -= 1
            }
        }
    }

    /// The text inside each `<...>`, comments and declarations left out.
    private static func tags(in xml: String) -> [Substring] {
        var result: [Substring] = []
        var rest = xml[...]
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { break }
            let inside = rest[rest.index(after: open)..<close]
            if !inside.hasPrefix("!") && !inside.hasPrefix("?") { result.append(inside) }
            rest = rest[rest.index(after: close)...]
        }
        return result
    }

    private static func attributes(of tag: Substring) -> [String: String] {
        var result: [String: String] = [:]
        var rest = tag
        while let eq = rest.firstIndex(of: "=") {
            let key = rest[..<eq].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).last.map(String.init) ?? ""
            let afterEq = rest[rest.index(after: eq)...]
            guard let quote = afterEq.firstIndex(where: { $0 == "\"" || $0 == "'" }) else { break }
            let quoteChar = afterEq[quote]
            let valueStart = afterEq.index(after: quote)
            guard let end = afterEq[valueStart...].firstIndex(of: quoteChar) else { break }
            result[key] = unescape(String(afterEq[valueStart..<end]))
            rest = afterEq[afterEq.index(after: end)...]
        }
        return result
    }

    private static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
