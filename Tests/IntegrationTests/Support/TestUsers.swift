import Foundation
import Glibc
import TestKit

/// Unprivileged users for the multi-user tests, created on first use (as root).
enum TestUsers {
    struct User: Sendable {
        let name: String
        let uid: UInt32
        let gid: UInt32
    }

    static let names = ["bgfetch-test-a", "bgfetch-test-b"]

    /// Looks the user up, creating it (no home, no login shell) if absent.
    static func user(_ name: String) throws -> User {
        if let user = lookup(name) { return user }
        let result = try Command.run(
            "/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name])
        // Another test may have created it at the same moment.
        guard let user = lookup(name) else { throw HarnessError("cannot create test user \(name): \(result)") }
        return user
    }

    private static func lookup(_ name: String) -> User? {
        guard let entry = getpwnam(name) else { return nil }
        return User(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }

    /// Runs the scripted bus client as `user` to its end and returns its results, one per operation.
    static func runClient(as user: User?, bus: TestBus, _ operations: [[Any]]) throws -> [Any] {
        try ScriptedClient("the bus client", as: user, bus: bus, operations).results()
    }
}

extension Array where Element == Any {
    /// The error name of result `index`, if it is an error.
    func errorName(_ index: Int) -> String? { ((self[index] as? [String: Any])?["error"]) as? String }
}
