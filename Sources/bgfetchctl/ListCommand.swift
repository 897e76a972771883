import ArgumentParser
import BackgroundFetch
import Foundation

/// `bgfetchctl list [--all] [--json]`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List registered tasks, like systemctl list-timers.",
        discussion: """
            Columns: APP, TASK, INTERVAL (the effective one; "asked" shows the task's own when a floor \
            raised it), NEXT and LAST fetch, the last RESULT, and STATE (scheduled, running, pending, \
            dormant, paused). Shows the tasks of your own uid; as root, --all shows every user's.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Flag(help: "As root: every user's tasks, with a UID column.")
    var all = false

    @Flag(help: "Print a JSON array of tasks.")
    var json = false

    func run() async throws {
        let manager = try busOptions.connect()
        defer { manager.close() }
        var tasks: [BackgroundFetchManager.ManagedTask]
        do throws(BackgroundFetchError) {
            tasks = try await manager.listTasks()
        } catch {
            throw CtlFailure(error)
        }
        let uid = getuid()
        if !all { tasks = tasks.filter { $0.uid == uid } }
        if json {
            Output.line(Output.json(tasks.map(Output.json)))
            return
        }
        if tasks.isEmpty {
            Output.line("No tasks.")
        } else {
            Output.line(Output.taskTable(tasks, showUID: all))
            Output.line("")
            Output.line("\(tasks.count) \(tasks.count == 1 ? "task" : "tasks") listed.")
        }
        if !all && uid == 0 { Output.line("Pass --all to see every user's tasks.") }
    }
}
