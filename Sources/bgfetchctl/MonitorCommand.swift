import ArgumentParser
import BackgroundFetch
import Dispatch
import Foundation
import Glibc

/// `bgfetchctl monitor [--count N] [--json]`.
struct MonitorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Print a line for each finished fetch, until interrupted.",
        discussion: """
            Follows the service's FetchFinished signal: the time, app, task, request id and result \
            (an expired fetch shows as Failed). Runs until SIGINT or SIGTERM (exit 0), until --count \
            lines were printed, or until the bus goes away (exit 3). The service need not be running \
            when it starts. On the system bus only allowed monitors get the signal.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Option(help: ArgumentHelp("Exit after this many lines.", valueName: "n"))
    var count: Int?

    @Flag(help: "Print one JSON object per line.")
    var json = false

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        let manager = try busOptions.connect()
        defer { manager.close() }
        let events: AsyncStream<BackgroundFetchManager.FetchFinished>
        do throws(BackgroundFetchError) {
            events = try await manager.fetchFinishedEvents()
        } catch {
            throw CtlFailure(error)
        }
        let signals = Self.exitOnSignals()
        defer { _ = signals }
        Output.error("Monitoring finished fetches on \(busOptions.bus); press Ctrl-C to stop.")
        var printed = 0
        for await event in events {
            Output.line(json ? Output.jsonLine(Self.json(event)) : Self.text(event))
            printed += 1
            if let count, printed >= count { return }
        }
        throw CtlFailure(.serviceNotRunning, "lost the connection to \(busOptions.bus)")
    }

    static func text(_ event: BackgroundFetchManager.FetchFinished) -> String {
        let result = event.result?.description ?? "result \(event.rawResult)"
        return "\(Output.time(Date()))  \(event.appID)  \(event.taskName)  request \(event.requestID)  \(result)"
    }

    static func json(_ event: BackgroundFetchManager.FetchFinished) -> [String: Any] {
        [
            "time": Output.microseconds(Date()),
            "app": event.appID,
            "task": event.taskName,
            "requestId": event.requestID,
            "result": event.rawResult,
            "resultName": event.result?.description ?? NSNull(),
        ]
    }

    /// SIGINT and SIGTERM end the monitor with status 0.
    static func exitOnSignals() -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { Glibc.exit(0) }
            source.resume()
            return source
        }
    }
}
