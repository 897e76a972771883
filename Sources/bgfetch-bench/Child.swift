import Foundation
import Glibc

/// A child process started with posix_spawn and reaped with waitpid.
///
/// Foundation's `Process.waitUntilExit` can hang; this never does. Children
/// stay in the bench's process group, so a Ctrl-C at the terminal ends them too.
final class Child: @unchecked Sendable {
    let pid: pid_t
    let name: String
    private var status: Int32?

    /// Starts `executable`; its stdout and stderr are appended to `output`.
    init(_ executable: String, _ arguments: [String], output: String) throws(BenchError) {
        name = (executable as NSString).lastPathComponent
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        var cArguments = ([executable] + arguments).map { strdup($0) } + [nil]
        var cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, &cArguments, &cEnvironment)
        guard rc == 0 else { throw BenchError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Whether it still runs (reaps it if it ended).
    var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, WNOHANG)
        if rc == pid {
            status = raw
            return false
        }
        return rc == 0
    }

    /// The exit status, or 128 + the signal that ended it; nil while it runs.
    var exitCode: Int32? {
        guard !isRunning, let status else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Waits at most `timeout` seconds for it to end; its exit code, or nil.
    @discardableResult
    func wait(timeout: Double) -> Int32? {
        let start = Clock.nanos()
        while isRunning {
            if Clock.seconds(since: start) >= timeout { return nil }
            usleep(1_000)
        }
        return exitCode
    }

    /// Sends `signal`, waits, and kills it if it is still there after `timeout`.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM, timeout: Double = 15) -> Int32? {
        guard isRunning else { return exitCode }
        kill(pid, signal)
        if let code = wait(timeout: timeout) { return code }
        kill(pid, SIGKILL)
        return wait(timeout: 10)
    }

    deinit { stop(SIGKILL) }
}
