import Foundation
import Glibc
import TestKit

/// Children are started and reaped by the shared TestKit.
typealias Child = ChildProcess

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
