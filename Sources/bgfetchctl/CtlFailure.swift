import BackgroundFetch

/// A failure to report: one line for stderr and an exit status.
struct CtlFailure: Error, CustomStringConvertible {
    /// The exit statuses `bgfetchctl --help` documents.
    enum Status: Int32 {
        case general = 1
        case usage = 2
        case serviceNotRunning = 3
        case notFound = 4
        case denied = 5
    }

    let status: Status
    let message: String

    init(_ status: Status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// The failure a library error stands for; `task` names the task the
    /// command was about, for "no such task".
    init(_ error: BackgroundFetchError, task: (app: String, name: String)? = nil) {
        switch error.code {
        case .serviceNotRunning, .busUnavailable:
            self.init(.serviceNotRunning, error.message)
        case .noSuchTask:
            let what = task.map { "no such task '\($0.name)' for app '\($0.app)'" } ?? "no such task"
            self.init(.notFound, what)
        case .accessDenied:
            self.init(.denied, "access denied: \(error.message)")
        case .denied:
            self.init(.denied, "denied: \(error.message)")
        case .restricted:
            self.init(.denied, "restricted: \(error.message)")
        case .invalidArgs:
            self.init(.usage, "invalid argument: \(error.message)")
        default:
            self.init(.general, error.message)
        }
    }

    var description: String { message }
}
