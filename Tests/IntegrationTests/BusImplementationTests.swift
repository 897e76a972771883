import Foundation
import Testing

/// The switch between bus implementations works: the buses the other suites
/// start are the implementation `BGFETCH_TEST_BUS` names, so a pass on
/// dbus-broker cannot quietly run on dbus-daemon.
@Suite(.timeLimit(.minutes(1)))
struct BusImplementationTests {
    /// The file a process runs, symbolic links resolved.
    func executable(_ pid: pid_t) throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
    }

    func resolved(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }

    @Test func theSelectedImplementationServesTheTestBus() throws {
        let selected = try #require(
            TestBusImplementation.selected, "\(TestBusImplementation.variable) names neither dbus-daemon nor dbus-broker")
        let bus = try TestBus()
        let client = try bus.connect()
        defer { client.close() }
        #expect(!client.uniqueName.isEmpty)
        switch selected {
        case .dbusDaemon:
            #expect(try executable(bus.pid) == resolved("/usr/bin/dbus-daemon"))
        case .dbusBroker:
            #expect(try executable(bus.pid) == resolved("/usr/bin/dbus-broker-launch"))
            let children = try String(contentsOfFile: "/proc/\(bus.pid)/task/\(bus.pid)/children", encoding: .utf8)
                .split(separator: " ").compactMap { pid_t($0) }
            #expect(try children.map(executable) == [resolved("/usr/bin/dbus-broker")])
        }
    }
}
