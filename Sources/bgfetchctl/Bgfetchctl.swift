import BackgroundFetchContract
import ArgumentParser
import Foundation
import Glibc

/// The root command: configuration only; the work is in the subcommands.
struct Bgfetchctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bgfetchctl",
        abstract: "Inspect and control bgfetch, the background-fetch service for desktop apps.",
        discussion: """
            Talks to org.bgfetch.BackgroundFetch1 on the user's session bus (--user, the default), \
            the system bus (--system) or the bus at --address. A user sees and changes the apps of \
            their own uid; root sees and changes every user's, and may name another user's app as \
            UID/APP_ID (1000/org.example.Mail).

            Output is for people; --json (on status, list, apps, history, monitor) is for scripts and keeps \
            its keys stable. Times in JSON are Unix microseconds (0 = none), intervals are seconds, \
            results are the BackgroundFetchResult numbers (1 NoData, 2 NewData, 3 Failed; 0 none yet).

            Exit status:
              0  success
              1  general failure (a change not stored, an unexpected reply)
              2  usage: bad arguments, or arguments the service refused
              3  the service is not running, or the bus cannot be reached
              4  no such task, or no such app (it has no registered task)
              5  access denied, or the app's status is Denied or Restricted
            """,
        version: Wire.version,
        subcommands: [
            StatusCommand.self, ListCommand.self, AppsCommand.self, TriggerCommand.self, EnableCommand.self,
            DisableCommand.self, HistoryCommand.self, MonitorCommand.self,
        ]
    )

    /// Parses, runs, and exits with the statuses documented above.
    static func runAndExit() async -> Never {
        do {
            let names = Set(configuration.subcommands.map { $0._commandName })
            var command = try parseAsRoot(GlobalOptions.hoisted(Array(CommandLine.arguments.dropFirst()), subcommands: names))
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Glibc.exit(0)
        } catch let failure as CtlFailure {
            Output.error("bgfetchctl: \(failure.message)")
            Glibc.exit(failure.status.rawValue)
        } catch {
            if exitCode(for: error) == .validationFailure {
                Output.error(fullMessage(for: error))
                Glibc.exit(CtlFailure.Status.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}
