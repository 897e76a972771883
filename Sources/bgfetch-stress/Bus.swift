import DBus
import Foundation
import TestKit

/// Each part of the stress suite starts its own private bus, of the kind the
/// settings ask for.
extension PrivateBus {
    convenience init(_ settings: Settings) throws {
        try self.init(kind: settings.bus)
    }

    func connect(_ label: String) throws -> BusConnection {
        do {
            return try connect(threadName: label)
        } catch {
            throw HarnessError("cannot connect to the test bus: \(error)")
        }
    }
}

func makeTemporaryDirectory(_ prefix: String) -> String {
    (try? PrivateBus.makeTemporaryDirectory(prefix)) ?? NSTemporaryDirectory() + prefix
}
