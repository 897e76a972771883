import Foundation
import Glibc

/// A process as a pidfd names it (the bus's `ProcessFD`): its pid, and
/// whether it has ended since. Reading `/proc/<pid>` and then finding the
/// pidfd's process still alive proves the pid was not recycled meanwhile.
public enum ProcessFD {
    /// The pid the descriptor refers to, from `/proc/self/fdinfo/<fd>`
    /// (`Pid:`); nil if it is not a pidfd, or the process has been reaped.
    public static func pid(of fd: Int32) -> Int32? {
        guard let data = FileManager.default.contents(atPath: "/proc/self/fdinfo/\(fd)") else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Pid:") {
            guard let pid = Int32(line.dropFirst(4).trimmingCharacters(in: .whitespaces)), pid > 0 else { return nil }
            return pid
        }
        return nil
    }

    /// Whether the process has ended: a pidfd turns readable when it does.
    public static func hasExited(_ fd: Int32) -> Bool {
        var probe = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&probe, 1, 0) != 0
    }
}
