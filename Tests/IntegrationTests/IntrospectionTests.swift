import BackgroundFetchContract
import Foundation
import TestKit
import Testing

/// The running service, `bgfetchd --print-introspection` and the project's
/// `dbus/org.bgfetch.BackgroundFetch1.xml` describe the same interfaces.
@Suite(.timeLimit(.minutes(2)))
struct IntrospectionTests {
    static let interfaces = ["org.bgfetch.BackgroundFetch1", "org.bgfetch.BackgroundFetch1.Manager"]

    @Test func runningServiceMatchesTheInterfaceFile() throws {
        let f = try Fixture()
        let result = try f.run(
            "gdbus", ["introspect", "--session", "--xml", "-d", ServiceClient.name, "-o", ServiceClient.path])
        try #require(result.status == 0, "gdbus introspect failed: \(result)")
        let service = try IntrospectionFacts(xml: result.stdout, source: "gdbus introspect's output")
        let file = try IntrospectionFacts(file: Paths.interfaceXML)
        #expect(service.interfaceNames.isSuperset(of: Self.interfaces))
        let difference = file.difference(from: service, interfaces: Self.interfaces, labels: ("the file", "the service"))
        if !difference.isEmpty {
            Issue.record("the running service and \(Paths.interfaceXML.lastPathComponent) differ:\n\(difference)")
        }
        for standard in ["org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Properties", "org.freedesktop.DBus.Peer"] {
            #expect(service.interfaceNames.contains(standard), "the service does not list \(standard)")
        }
        // The standard interfaces carry their usual members.
        #expect(service.members(of: "org.freedesktop.DBus.Introspectable", kind: "method") == ["Introspect"])
        #expect(Set(service.members(of: "org.freedesktop.DBus.Properties", kind: "method")).isSuperset(of: ["Get", "GetAll", "Set"]))
        #expect(Set(service.members(of: "org.freedesktop.DBus.Peer", kind: "method")).isSuperset(of: ["Ping", "GetMachineId"]))
        // No other org.bgfetch interface appears on the object.
        #expect(service.interfaceNames.filter { $0.hasPrefix("org.bgfetch.") } == Set(Self.interfaces))
    }

    @Test func objectPathIsReachableFromTheRoot() throws {
        let f = try Fixture()
        let tree = try f.run("busctl", ["--user", "tree", "--list", ServiceClient.name])
        try #require(tree.status == 0, "busctl tree failed: \(tree)")
        let paths = tree.stdout.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(paths.contains(ServiceClient.path), "busctl tree does not reach \(ServiceClient.path):\n\(tree.stdout)")
    }

    @Test func printIntrospectionMatchesTheInterfaceFile() throws {
        let result = try Command.run(Paths.bgfetchd, ["--print-introspection"])
        try #require(result.status == 0, "bgfetchd --print-introspection failed: \(result)")
        let printed = try IntrospectionFacts(xml: result.stdout, source: "bgfetchd --print-introspection's output")
        let file = try IntrospectionFacts(file: Paths.interfaceXML)
        let difference = file.difference(from: printed, interfaces: Self.interfaces, labels: ("the file", "--print-introspection"))
        if !difference.isEmpty {
            Issue.record("bgfetchd --print-introspection and \(Paths.interfaceXML.lastPathComponent) differ:\n\(difference)")
        }
        #expect(printed.interfaceNames.isSuperset(of: Self.interfaces))
    }

    /// The wire contract module says what the interface file says: the same
    /// interfaces, and every option key, info key, state and error name the
    /// module knows is documented in the file.
    @Test func contractModuleMatchesTheInterfaceFile() throws {
        let file = try IntrospectionFacts(file: Paths.interfaceXML)
        let text = try String(contentsOf: Paths.interfaceXML, encoding: .utf8)
        #expect(file.interfaceNames == [Wire.appInterface, Wire.managerInterface])
        #expect(Wire.busName == Wire.appInterface)
        #expect(text.contains(Wire.objectPath))
        let documented = RegisterOptionKey.allCases.map(\.rawValue) + TaskInfoKey.allCases.map(\.rawValue)
            + AppInfoKey.allCases.map(\.rawValue)
            + TaskState.allCases.map(\.rawValue)
        for word in documented { #expect(text.contains(word), "the interface file does not mention '\(word)'") }
        for error in ServiceErrorName.allCases {
            let short = error.dbusName.replacingOccurrences(of: ServiceErrorName.prefix, with: "Error.")
                .replacingOccurrences(of: "org.freedesktop.DBus.Error.", with: "")
            #expect(text.contains(short), "the interface file does not mention \(error.dbusName)")
            #expect(ServiceErrorName(dbusName: error.dbusName) == error)
        }
        let version = try Command.run(Paths.bgfetchd, ["--version"])
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == Wire.version)
    }

    /// The member names (as sets: order is not part of an interface) and signatures the contract gives.
    @Test func interfaceFileHasExactlyTheContractsMembers() throws {
        let file = try IntrospectionFacts(file: Paths.interfaceXML)
        let app = "org.bgfetch.BackgroundFetch1", manager = "org.bgfetch.BackgroundFetch1.Manager"
        #expect(file.interfaceNames == Set(Self.interfaces))
        #expect(
            Set(file.members(of: app, kind: "method")) == [
                "RegisterTask", "UnregisterTask", "UnregisterAllTasks", "IsTaskRegistered", "GetRegisteredTasks",
                "GetStatus", "SetMinimumInterval", "FinishFetch", "TriggerFetch",
            ])
        #expect(Set(file.members(of: manager, kind: "method")) == ["ListTasks", "SetAppEnabled", "TriggerTask", "GetHistory", "GetAppStatus", "ListApps"])
        #expect(Set(file.members(of: app, kind: "signal")) == ["FetchRequested", "FetchExpired"])
        #expect(file.members(of: manager, kind: "signal") == ["FetchFinished"])
        #expect(Set(file.members(of: app, kind: "property")) == ["Version", "FetchTimeout", "DefaultMinimumInterval", "MinimumIntervalFloor"])
        #expect(file.members(of: manager, kind: "property").isEmpty)
        // The signatures the contract gives.
        #expect(file.signature(app, "method", "RegisterTask", direction: "in") == "sa{sv}")
        #expect(file.signature(app, "method", "GetRegisteredTasks", direction: "out") == "a(sa{sv})")
        #expect(file.signature(app, "method", "FinishFetch", direction: "in") == "tu")
        #expect(file.signature(app, "method", "TriggerFetch", direction: "out") == "t")
        #expect(file.signature(app, "signal", "FetchRequested", direction: "out") == "st")
        #expect(file.signature(manager, "method", "ListTasks", direction: "out") == "a(ssa{sv})")
        #expect(file.signature(manager, "method", "GetHistory", direction: "out") == "a(ttu)")
        #expect(file.signature(manager, "method", "GetAppStatus", direction: "in") == "s")
        #expect(file.signature(manager, "method", "GetAppStatus", direction: "out") == "u")
        #expect(file.signature(manager, "method", "ListApps", direction: "out") == "a(suua{sv})")
        #expect(file.signature(manager, "signal", "FetchFinished", direction: "out") == "sstu")
        #expect(file.facts.contains("\(app) property FetchTimeout u read"))
        #expect(file.facts.contains("\(app) property Version s read"))
    }
}

/// An introspection document reduced to one line per fact, e.g.
/// `org.bgfetch.BackgroundFetch1 method RegisterTask arg 0 in s name`, so two
/// documents compare regardless of order, whitespace and comments, and a
/// difference reads as the lines only one of them has.
struct IntrospectionFacts {
    let facts: Set<String>

    /// Reduces the document with /usr/bin/python3's xml.etree (a strict XML
    /// parser, like the ones gdbus-codegen and other binding generators use).
    init(xml: String, source: String = "the introspection XML") throws {
        let directory = Paths.temporaryDirectory("introspect")
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("facts.py")
        let input = directory.appendingPathComponent("input.xml")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        try xml.write(to: input, atomically: true, encoding: .utf8)
        let result = try Command.run("/usr/bin/python3", [script.path, input.path])
        guard result.status == 0 else {
            // The parser's last line names the line and column; show that line.
            let reason = result.stderr.split(whereSeparator: \.isNewline).last.map(String.init) ?? "exit \(result.status)"
            var text = "\(source) is not a readable introspection document: \(reason)"
            if let range = reason.range(of: #"line (\d+)"#, options: .regularExpression),
                let number = Int(reason[range].dropFirst(5)), number >= 1
            {
                let lines = xml.split(separator: "\n", omittingEmptySubsequences: false)
                if number <= lines.count { text += "\n  line \(number): \(lines[number - 1])" }
            }
            throw HarnessError(text)
        }
        facts = Set(result.stdout.split(whereSeparator: \.isNewline).map(String.init))
    }

    init(file: URL) throws {
        try self.init(xml: String(contentsOf: file, encoding: .utf8), source: file.path)
    }

    var interfaceNames: Set<String> {
        Set(facts.compactMap { line in
            let words = line.split(separator: " ")
            return words.count == 2 && words[1] == "interface" ? String(words[0]) : nil
        })
    }

    /// The names of an interface's members of one kind, in document order.
    func members(of interface: String, kind: String) -> [String] {
        facts.compactMap { line -> (Int, String)? in
            let words = line.split(separator: " ")
            guard words.count == 4, words[0] == interface, words[1] == kind, let index = Int(words[3].dropFirst()) else { return nil }
            return (index, String(words[2]))
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The types of a member's arguments in one direction, concatenated.
    func signature(_ interface: String, _ kind: String, _ member: String, direction: String) -> String {
        facts.compactMap { line -> (Int, String)? in
            let words = line.split(separator: " ")
            guard words.count == 8, words[0] == interface, words[1] == kind, words[2] == member, words[3] == "arg",
                words[5] == direction, let index = Int(words[4])
            else { return nil }
            return (index, String(words[6]))
        }.sorted { $0.0 < $1.0 }.map(\.1).joined()
    }

    /// The facts about `interfaces` that only one side has, or "" if none.
    func difference(from other: IntrospectionFacts, interfaces: [String], labels: (String, String)) -> String {
        func relevant(_ facts: Set<String>) -> Set<String> {
            facts.filter { line in interfaces.contains(String(line.split(separator: " ")[0])) }
        }
        // Member order is not part of the interface; compare without the position marks.
        func unordered(_ facts: Set<String>) -> Set<String> {
            Set(relevant(facts).map { line in
                let words = line.split(separator: " ")
                return words.count == 4 && words[3].hasPrefix("#") ? words[0...2].joined(separator: " ") : line
            })
        }
        let mine = unordered(facts), theirs = unordered(other.facts)
        var text = ""
        let onlyMine = mine.subtracting(theirs).sorted(), onlyTheirs = theirs.subtracting(mine).sorted()
        if !onlyMine.isEmpty { text += "only in \(labels.0):\n" + onlyMine.map { "  - \($0)" }.joined(separator: "\n") + "\n" }
        if !onlyTheirs.isEmpty { text += "only in \(labels.1):\n" + onlyTheirs.map { "  + \($0)" }.joined(separator: "\n") + "\n" }
        return text
    }

    /// Prints, for every interface: `IFACE interface`; for each member
    /// `IFACE KIND NAME #POSITION`; for each argument
    /// `IFACE KIND NAME arg INDEX DIRECTION TYPE ARGNAME` (a method's
    /// direction defaults to `in`, a signal's is always `out`); for each
    /// property `IFACE property NAME TYPE ACCESS`.
    static let script = #"""
        import sys
        import xml.etree.ElementTree as ET

        root = ET.parse(sys.argv[1]).getroot()
        if root.tag != "node":
            sys.exit("the root element is <%s>, not <node>" % root.tag)
        out = []
        for iface in root.findall("interface"):
            iname = iface.get("name")
            out.append("%s interface" % iname)
            positions = {}
            for member in iface:
                kind = member.tag
                if kind not in ("method", "signal", "property"):
                    continue
                name = member.get("name")
                positions[kind] = positions.get(kind, -1) + 1
                out.append("%s %s %s #%d" % (iname, kind, name, positions[kind]))
                if kind == "property":
                    out.append("%s property %s %s %s" % (iname, name, member.get("type"), member.get("access")))
                    continue
                for index, arg in enumerate(member.findall("arg")):
                    if kind == "signal":
                        direction = "out"
                    else:
                        direction = arg.get("direction", "in")
                    out.append("%s %s %s arg %d %s %s %s" % (
                        iname, kind, name, index, direction, arg.get("type"), arg.get("name", "-")))
        print("\n".join(out))
        """#
}
