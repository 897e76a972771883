import DBus
import Foundation
import TestKit
import Testing

/// `Manager.GetAppStatus` tells Denied from Restricted; `Manager.ListApps`
/// shows every app with tasks or a stored setting, for settings panels.
@Suite(.timeLimit(.minutes(1)))
struct ManagerAppsTests {
    static let restricted = "org.example.Tracker"

    func fixture() throws -> Fixture {
        try Fixture(configFile: "[Apps]\nRestricted=\(Self.restricted)\n")
    }

    func appStatus(_ f: Fixture, _ app: String) throws -> UInt32? {
        try f.client.call("GetAppStatus", [.string(app)], interface: ServiceClient.manager).first?.uint32Value
    }

    @Test func getAppStatusTellsDeniedFromRestricted() throws {
        let f = try fixture()
        try f.client.register("inbox", .options(interval: 3600))
        #expect(try appStatus(f, Fixture.appID) == 3)
        #expect(try appStatus(f, Self.restricted) == 2)
        try f.client.call("SetAppEnabled", [.string(Fixture.appID), .bool(false)], interface: ServiceClient.manager)
        #expect(try appStatus(f, Fixture.appID) == 1)
        // As the app's own GetStatus answers.
        #expect(try f.client.call("GetStatus").first?.uint32Value == 1)
        #expect(f.client.error("GetAppStatus", [.string("bad name")], interface: ServiceClient.manager)?.name
            == DBusError.Name.invalidArgs)
    }

    @Test func listAppsShowsAppsWithTasksOrSettings() throws {
        let f = try fixture()
        try f.client.register("inbox", .options(interval: 3600))
        try f.client.register("outbox", .options(interval: 3600))
        let manager = ServiceClient.manager
        try f.client.call("SetAppEnabled", [.string("org.example.Quiet"), .bool(false)], interface: manager)
        try f.client.call("SetAppEnabled", [.string("*"), .bool(true)], interface: manager)
        var apps: [String: (uid: UInt32, status: UInt32, info: [String: DBusValue])] = [:]
        for entry in try f.client.call("ListApps", interface: manager).first?.arrayValue ?? [] {
            let fields = try #require(entry.structValue)
            apps[fields[0].stringValue ?? ""] = (fields[1].uint32Value ?? 0, fields[2].uint32Value ?? 0, fields[3].vardictValue ?? [:])
        }
        #expect(Set(apps.keys) == [Fixture.appID, "org.example.Quiet"], "\"*\" is a switch, not an app")
        let mail = try #require(apps[Fixture.appID])
        #expect(mail.uid == getuid() && mail.status == 3)
        #expect(mail.info["taskCount"] == .uint32(2) && mail.info["enabled"] == .bool(true))
        #expect(mail.info["restricted"] == .bool(false) && mail.info["minimumInterval"] == .uint32(0))
        let quiet = try #require(apps["org.example.Quiet"])
        #expect(quiet.status == 1 && quiet.info["enabled"] == .bool(false) && quiet.info["taskCount"] == .uint32(0))
    }
}
