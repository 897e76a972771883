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


/// Seconds on the monotonic clock.
enum Monotonic {
    static var now: Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
