/// How much each stage does: the full run the issue asks for, or `--quick`.
struct Scale {
    /// Sequential calls of each kind, interleaved (GetStatus, Ping, Ping, GetStatus, ...).
    var roundTrips: Int
    var throughputCalls: Int
    var throughputRounds: Int
    var inFlight = 64
    /// Rounds of RegisterTask calls, each between two raw SQLite windows.
    var registerRounds: Int
    /// How long each RegisterTask round and each raw SQLite window lasts.
    var registerSeconds: Double
    var floorSeconds: Double
    var clients = 16
    var restoreTasks: Int
    var restoreTasksPerApp = 100
    var dueTasks: Int
    var idleTasks: Int
    var idleSeconds: Double
    /// Pause after a daemon takes its name before its idle cost is sampled.
    var settleSeconds: Double
    /// Time between a due daemon owning its name and the lone task falling due.
    var dueLead: Double
    /// Waiting tasks released by one change of the network.
    var releaseTasks = 1_000
    /// Tasks in the simulated day.
    var dayTasks = 1_000

    static let full = Scale(
        roundTrips: 10_000, throughputCalls: 10_000, throughputRounds: 9, registerRounds: 5, registerSeconds: 1, floorSeconds: 1,
        restoreTasks: 100_000, dueTasks: 10_000, idleTasks: 10_000, idleSeconds: 60, settleSeconds: 2, dueLead: 3)

    static let quick = Scale(
        roundTrips: 300, throughputCalls: 1_000, throughputRounds: 1, registerRounds: 1, registerSeconds: 0.3, floorSeconds: 0.2,
        restoreTasks: 2_000, dueTasks: 200, idleTasks: 200, idleSeconds: 1, settleSeconds: 0.3, dueLead: 2.5, releaseTasks: 100, dayTasks: 100)
}
