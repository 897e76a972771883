import Foundation
import Glibc

/// A child process started with posix_spawn and reaped with waitpid (never
/// Foundation's `Process`, whose waiting spins a run loop).
final class Child: @unchecked Sendable {
    let pid: pid_t
    let executable: String
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `executable`. Output goes to the files named (or nowhere);
    /// `descriptors` maps child fd numbers to descriptors of ours to pass on.
    init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdout: String? = nil, stderr: String? = nil, inheritOutput: Bool = false, descriptors: [Int32: Int32] = [:]
    ) throws {
        self.executable = executable
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
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
        guard rc == 0 else { throw StressError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Whether it still runs (reaps it if it ended).
    var isRunning: Bool {
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
    func wait(timeout: Double) -> Int32? {
        let deadline = Monotonic.now + timeout
        while isRunning {
            if Monotonic.now >= deadline { return nil }
            usleep(2_000)
        }
        return exitCode
    }

    /// The exit status, or 128 + the signal that ended it.
    var exitCode: Int32? {
        lock.lock()
        defer { lock.unlock() }
        guard let status else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Kills it if it still runs and reaps it.
    func terminate(_ signal: Int32 = SIGKILL) {
        guard isRunning else { return }
        kill(pid, signal)
        if wait(timeout: 10) == nil {
            kill(pid, SIGKILL)
            wait(timeout: 10)
        }
    }

    deinit { terminate() }
}

/// Runs a program to its end and returns its exit status and output.
func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, output: String) {
    let file = NSTemporaryDirectory() + "bgfetch-stress-cmd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { unlink(file) }
    let child = try Child(executable, arguments, stdout: file, stderr: file)
    let status = child.wait(timeout: timeout)
    child.terminate()
    return (status ?? -1, (try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
}

struct StressError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Seconds on the monotonic clock.
enum Monotonic {
    static var now: Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// What `/proc` tells about a process: resident memory and open descriptors.
struct ProcStats: CustomStringConvertible {
    var rssKiB: Int
    var fds: Int

    /// CPU time (user + system) the process has used, in seconds.
    static func cpuSeconds(_ pid: pid_t) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func of(_ pid: pid_t) -> ProcStats? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        var rss = 0
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            rss = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        return ProcStats(rssKiB: rss, fds: fds)
    }

    var rssMiB: Double { Double(rssKiB) / 1024 }
    var description: String { String(format: "RSS %.1f MiB, %d fds", rssMiB, fds) }
}
