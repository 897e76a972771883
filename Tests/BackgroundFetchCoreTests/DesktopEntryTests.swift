import Foundation
import Testing

@testable import BackgroundFetchCore

/// The Desktop Entry Specification's rules bgfetchd relies on to start apps.
@Suite(.timeLimit(.minutes(1)))
struct DesktopEntryTests {
    @Test func onlyTheMainGroupsTrueCounts() {
        #expect(DesktopEntry.isDBusActivatable("[Desktop Entry]\nName=Feeds\nDBusActivatable=true\n"))
        #expect(DesktopEntry.isDBusActivatable("# comment\n[Desktop Entry]\n  DBusActivatable = true  \n"))
        #expect(!DesktopEntry.isDBusActivatable("[Desktop Entry]\nDBusActivatable=false\n"))
        #expect(!DesktopEntry.isDBusActivatable("[Desktop Entry]\nName=Feeds\n"))
        #expect(!DesktopEntry.isDBusActivatable("[Desktop Action new]\nDBusActivatable=true\n"), "another group")
        #expect(!DesktopEntry.isDBusActivatable("[Desktop Entry]\nDBusActivatable=True\n"), "booleans are lower case")
    }

    @Test func theObjectPathIsMadeFromTheAppID() {
        #expect(DesktopActivation.objectPath(forAppID: "org.example.Feeds") == "/org/example/Feeds")
        #expect(DesktopActivation.objectPath(forAppID: "org.example.Feed-Reader") == "/org/example/Feed_Reader")
    }

    @Test func theSearchFollowsTheXDGBaseDirectories() {
        #expect(
            DesktopEntry.searchDirectories(environment: ["HOME": "/home/a"])
                == ["/home/a/.local/share/applications", "/usr/local/share/applications", "/usr/share/applications"])
        #expect(
            DesktopEntry.searchDirectories(environment: ["XDG_DATA_HOME": "/d", "XDG_DATA_DIRS": "/x/:relative:/y"])
                == ["/d/applications", "/x/applications", "/y/applications"])
    }

    @Test func theFirstEntryFoundWins() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bgfetch-desktop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let first = root.appendingPathComponent("first"), second = root.appendingPathComponent("second")
        for dir in [first, second] { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
        try "[Desktop Entry]\nDBusActivatable=false\n".write(to: first.appendingPathComponent("org.example.A.desktop"), atomically: true, encoding: .utf8)
        try "[Desktop Entry]\nDBusActivatable=true\n".write(to: second.appendingPathComponent("org.example.A.desktop"), atomically: true, encoding: .utf8)
        try "[Desktop Entry]\nDBusActivatable=true\n".write(to: second.appendingPathComponent("org.example.B.desktop"), atomically: true, encoding: .utf8)
        let dirs = [first.path, second.path]
        #expect(DesktopEntry.isDBusActivatable(appID: "org.example.A", in: dirs) == false)
        #expect(DesktopEntry.isDBusActivatable(appID: "org.example.B", in: dirs) == true)
        #expect(DesktopEntry.isDBusActivatable(appID: "org.example.C", in: dirs) == nil)
        #expect(DesktopEntry.isDBusActivatable(appID: "../second/org.example.B", in: dirs) == nil, "no paths in an app id")
        // A FIFO (or a link to /dev/zero) is not read: it would stall the daemon.
        #expect(mkfifo(first.appendingPathComponent("org.example.D.desktop").path, 0o644) == 0)
        #expect(DesktopEntry.isDBusActivatable(appID: "org.example.D", in: dirs) == false)
        try FileManager.default.createSymbolicLink(
            atPath: first.appendingPathComponent("org.example.E.desktop").path, withDestinationPath: "/dev/zero")
        #expect(DesktopEntry.isDBusActivatable(appID: "org.example.E", in: dirs) == false)
    }
}
