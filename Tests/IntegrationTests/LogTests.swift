import DBus
import Foundation
import TestKit
import Testing

/// One info line per registration, unregistration, delivery and answer,
/// naming the app and the task; refusals at debug with the caller and the
/// member; no raw caller input in any line.
@Suite(.timeLimit(.minutes(1)))
struct LogTests {
    func lines(_ f: Fixture, containing word: String) -> [Substring] {
        f.daemon.log.split(separator: "\n").filter { $0.contains(" \(word)") }
    }

    @Test func aFetchsLifeIsLoggedLineByLine() throws {
        let f = try Fixture()
        try f.client.register("inbox", .options(interval: 3600))
        let id = try #require(try f.client.call("TriggerFetch", [.string("inbox")]).first?.uint64Value)
        _ = try f.client.waitForSignal("FetchRequested")
        try f.client.call("FinishFetch", [.uint64(id), .uint32(2)])
        try f.client.call("UnregisterTask", [.string("inbox")])
        _ = f.client.error("UnregisterTask", [.string("t\n\u{1b}[31mforged")])
        // The replies above came after each line was written.
        for word in ["registered", "delivered", "answered", "unregistered"] {
            let found = lines(f, containing: word)
            #expect(found.count == 1, "\(word): \(found)")
            #expect(found.first?.contains("app=\(Fixture.appID)") == true && found.first?.contains("task=inbox") == true)
        }
        #expect(lines(f, containing: "answered").first?.contains("result=NewData") == true)
        let refused = lines(f, containing: "refused")
        #expect(refused.count == 1 && refused.first?.contains("member=UnregisterTask") == true, "\(refused)")
        #expect(refused.first?.contains("caller=\(f.client.uniqueName)") == true)
        #expect(!f.daemon.log.contains("\u{1b}") && !f.daemon.log.contains("\nforged") && !f.daemon.log.contains("[31mforged\n"))
        #expect(f.daemon.log.contains(#"t\n\x1b[31mforged"#))
    }

    /// Under systemd (`JOURNAL_STREAM` names standard error) each line starts
    /// with its syslog priority, for `journalctl -p`, and carries no
    /// timestamp: the journal records it.
    @Test func toTheJournalEachLineCarriesItsPriority() throws {
        let bus = try TestBus()
        let daemon = try DaemonProcess(bus: bus, arguments: ["--minimum-interval-floor", "1"])
        #expect(FileManager.default.createFile(atPath: daemon.logFile.path, contents: nil))
        var file = stat()
        #expect(stat(daemon.logFile.path, &file) == 0)
        daemon.environment["JOURNAL_STREAM"] = "\(file.st_dev):\(file.st_ino)"
        try daemon.start()
        let client = try ServiceClient(bus: bus, ownName: Fixture.appID)
        defer { client.close() }
        try client.register("inbox")
        _ = client.error("UnregisterTask", [.string("nothing")])
        let lines = daemon.log.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("<6>serving: ") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("<6>registered: ") && $0.contains("app=\(Fixture.appID)") && $0.contains("task=inbox") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("<7>refused: ") }, "\(lines)")  // debug
        #expect(lines.allSatisfy { $0.hasPrefix("<") && !$0.contains("bgfetchd:") }, "\(lines)")

        // A JOURNAL_STREAM that is not standard error (inherited by a child
        // of a service) changes nothing.
        let other = try DaemonProcess(bus: try TestBus(), arguments: [])
        other.environment["JOURNAL_STREAM"] = "\(file.st_dev):\(file.st_ino)"
        try other.start()
        #expect(other.log.contains(" info bgfetchd: ") && !other.log.contains("<6>"), "\(other.log)")
    }
}
