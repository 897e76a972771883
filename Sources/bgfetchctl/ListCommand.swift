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
            dormant, paused). Shows your own tasks; root sees every user's, with a UID column when \
            there are others', as loginctl does.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Flag(help: "Always show the UID column (root sees every user's tasks in any case).")
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
        let everyUser = all || uid == 0
        if !everyUser { tasks = tasks.filter { $0.uid == uid } }
        if json {
            Output.line(Output.json(tasks.map(Output.json)))
            return
        }
        if tasks.isEmpty {
            Output.line("No tasks.")
        } else {
            Output.line(Output.taskTable(tasks, showUID: all || tasks.contains { $0.uid != uid }))
            Output.line("")
            Output.line("\(tasks.count) \(tasks.count == 1 ? "task" : "tasks") listed.")
        }
    }
}
