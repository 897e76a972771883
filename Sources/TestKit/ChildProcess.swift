import Foundation
import Glibc

/// A child process started with posix_spawn and reaped with waitpid, for the
/// tests, the bench and the stress suite.
///
/// Foundation's `Process.waitUntilExit` spins a run loop and hangs when called
/// from the test runner's few threads; this never does. The child starts with
/// no blocked signals and default handlers for the shutdown signals, whatever
/// the parent's threads had.
///
/// `@unchecked Sendable`: its one mutable field, the reaped status, is read
/// and written under `lock`.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let executable: String
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `executable`. Standard input comes from `stdin` (a file) or
    /// /dev/null; output is appended to the files named, or dropped, or left
    /// as the parent's with `inheritOutput`. `descriptors` maps the child's fd
    /// numbers to descriptors of ours to pass on (socket activation).
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: String? = nil, stdout: String? = nil, stderr: String? = nil, inheritOutput: Bool = false,
        descriptors: [Int32: Int32] = [:]
    ) throws(HarnessError) {
        self.executable = executable
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        if !inheritOutput {
            posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        for (target, source) in descriptors { posix_spawn_file_actions_adddup2(&actions, source, target) }

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

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var cArgv = ([executable] + arguments).map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, &cArgv, &cEnv)
        guard rc == 0 else { throw HarnessError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Whether it still runs (reaps it if it ended).
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if status != nil { return false }
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, WNOHANG)
        if rc == pid {
            status = raw
            return false
        }
        return rc == 0
    }

    /// Waits for it to end, at most `timeout` seconds; nil if it still runs.
    @discardableResult
    public func wait(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() >= deadline { return nil }
            usleep(1_000)
        }
        return exitCode
    }

    /// The exit status, or 128 + the signal that ended it; nil while it runs.
    public var exitCode: Int32? {
        lock.lock()
        defer { lock.unlock() }
        guard let status else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Sends `signal` if it still runs, waits for it, and kills it if it is
    /// still there after ten seconds.
    public func terminate(_ signal: Int32 = SIGKILL) {
        guard isRunning else { return }
        kill(pid, signal)
        if wait(timeout: 10) == nil {
            kill(pid, SIGKILL)
            wait(timeout: 10)
        }
    }

    deinit { terminate() }
}

/// Why a child process, or what it needs (a socket, a mount namespace), could
/// not be made; the description says what and why.
