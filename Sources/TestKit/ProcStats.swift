import Foundation
import Glibc

/// What `/proc` tells about a process the tests, the bench or the stress
/// suite started: one reader for all of them.
public struct ProcStats: Sendable, CustomStringConvertible {
    /// Resident memory (`VmRSS`), KiB.
    public var rssKiB: Int
    /// Open file descriptors.
    public var fds: Int

    public init(rssKiB: Int, fds: Int) {
        self.rssKiB = rssKiB
        self.fds = fds
    }

    /// Resident memory and open descriptors of `pid` now.
    public static func of(_ pid: pid_t) -> ProcStats? {
        guard let current = memory(pid)?.currentKiB else { return nil }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        return ProcStats(rssKiB: current, fds: fds)
    }

    /// The higher of each reading, this one's and `other`'s (none: this one's).
    public func peak(_ other: ProcStats?) -> ProcStats {
        guard let other else { return self }
        return ProcStats(rssKiB: Swift.max(rssKiB, other.rssKiB), fds: Swift.max(fds, other.fds))
    }

    public var rssMiB: Double { Double(rssKiB) / 1024 }
    public var description: String { String(format: "RSS %.1f MiB, %d fds", rssMiB, fds) }

    /// CPU time (user + system) the process has used, in seconds.
    public static func cpuSeconds(_ pid: pid_t) -> Double? {
        guard let text = read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Context switches of all the threads of `pid`, added up.
    public static func totalContextSwitches(_ pid: pid_t) -> Int {
        contextSwitches(pid).values.reduce(0) { $0 + $1.total }
    }

    /// `VmHWM` (peak resident set) and `VmRSS` of `pid`, in KiB.
    public static func memory(_ pid: Int32) -> (peakKiB: Int, currentKiB: Int)? {
        guard let text = read("/proc/\(pid)/status") else { return nil }
        let fields = keyed(text)
        guard let peak = fields["VmHWM"], let current = fields["VmRSS"] else { return nil }
        return (peak, current)
    }

    /// One thread's context switches.
    public struct ThreadSwitches: Sendable {
        public var name: String
        public var voluntary: Int
        public var involuntary: Int
        public var total: Int { voluntary + involuntary }
    }

    /// Context switches of every thread of `pid`, by thread id.
    public static func contextSwitches(_ pid: Int32) -> [Int: ThreadSwitches] {
        var result: [Int: ThreadSwitches] = [:]
        let directory = "/proc/\(pid)/task"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            guard let tid = Int(entry), let text = read("\(directory)/\(entry)/status") else { continue }
            let fields = keyed(text)
            let name = read("\(directory)/\(entry)/comm")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            result[tid] = ThreadSwitches(
                name: name, voluntary: fields["voluntary_ctxt_switches"] ?? 0,
                involuntary: fields["nonvoluntary_ctxt_switches"] ?? 0)
        }
        return result
    }

    /// CPU time of all threads of `pid` in nanoseconds (first field of each
    /// thread's `schedstat`), or nil when the kernel does not keep it.
    public static func cpuNanos(_ pid: Int32) -> UInt64? {
        let directory = "/proc/\(pid)/task"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        var total: UInt64 = 0
        var any = false
        for entry in entries {
            guard let text = read("\(directory)/\(entry)/schedstat"),
                let first = text.split(separator: " ").first, let value = UInt64(first)
            else { continue }
            total += value
            any = true
        }
        return any ? total : nil
    }

    /// The type of the file system holding `path`, from `/proc/self/mounts`.
    public static func fileSystem(of path: String) -> String {
        guard let mounts = read("/proc/self/mounts") else { return "unknown" }
        var best: (point: String, type: String) = ("", "unknown")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let point = String(fields[1]).replacingOccurrences(of: "\\040", with: " ")
            let inside = path == point || path.hasPrefix(point == "/" ? "/" : point + "/")
            if inside && point.count >= best.point.count { best = (point, String(fields[2])) }
        }
        return best.type
    }

    /// The 1-minute load average: how busy the machine was besides the bench.
    public static func loadAverage() -> String {
        read("/proc/loadavg")?.split(separator: " ").first.map(String.init) ?? "?"
    }

    private static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// `Key:   123 kB` lines as numbers.
    private static func keyed(_ text: String) -> [String: Int] {
        var fields: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" }).first
                .flatMap { Int($0) }
            if let value { fields[String(line[..<colon])] = value }
        }
        return fields
    }
}
