import Foundation
import TestKit

extension DaemonUnderTest {
    /// The daemon every part uses: `settings.bgfetchd` on `bus` with a one-second
    /// interval floor (plus `arguments`), started and owning its name.
    static func started(
        on bus: PrivateBus, _ settings: Settings, arguments: [String] = [], stateDirectory: String? = nil
    ) throws -> DaemonUnderTest {
        let daemon = try DaemonUnderTest(
            executable: settings.bgfetchd, address: bus.address, directory: bus.directory,
            arguments: ["--minimum-interval-floor", "1"] + arguments, stateDirectory: stateDirectory, bootID: "stress-boot-1")
        try daemon.start()
        return daemon
    }
}
