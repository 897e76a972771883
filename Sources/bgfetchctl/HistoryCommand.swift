import ArgumentParser
import BackgroundFetch
import Foundation

/// `bgfetchctl history APP TASK [--json]`.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show a task's recent fetches, oldest first.",
        discussion: """
            REQUESTED is when the service asked, FINISHED when the app answered ("expired" if it did \
            not in time: counted Failed; "outstanding" while it may still answer). The service keeps \
            at least the last 100 fetches of a task.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Argument(help: "The app id (UID/APP_ID for another user's app, as root).")
    var app: String

    @Argument(help: "The task name.")
    var task: String

    @Flag(help: "Print a JSON array of fetches.")
    var json = false

    func run() async throws {
        let manager = try busOptions.connect()
        defer { manager.close() }
        let records: [BackgroundFetchManager.FetchRecord]
        do throws(BackgroundFetchError) {
            records = try await manager.history(appID: app, name: task)
        } catch {
            throw CtlFailure(error, task: (app, task))
        }
        if json {
            Output.line(Output.json(records.map(Self.json)))
            return
        }
        guard !records.isEmpty else {
            Output.line("No fetches yet.")
            return
        }
        let rows = records.map { record -> [String] in
            let finished: String
            let took: String
            if let finishedAt = record.finishedAt {
                finished = Output.time(finishedAt)
                let micros = finishedAt >= record.requestedAt
                    ? Output.microseconds(finishedAt) - Output.microseconds(record.requestedAt) : 0
                took = micros < 1_000_000 ? "\(micros / 1000)ms" : Output.duration(seconds: micros / 1_000_000)
            } else {
                finished = record.result == nil ? "outstanding" : "expired"
                took = "-"
            }
            return [Output.time(record.requestedAt), finished, took, Output.result(record.result)]
        }
        Output.line(Output.table(["REQUESTED", "FINISHED", "TOOK", "RESULT"], rows))
    }

    static func json(_ record: BackgroundFetchManager.FetchRecord) -> [String: Any] {
        [
            "requestedAt": Output.microseconds(record.requestedAt),
            "finishedAt": Output.microseconds(record.finishedAt),
            "result": record.result?.rawValue ?? 0,
            "resultName": record.result?.description ?? NSNull(),
            "expired": record.finishedAt == nil && record.result != nil,
        ]
    }
}
