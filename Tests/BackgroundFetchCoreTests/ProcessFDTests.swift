import CTestKit
import Glibc
import Testing

@testable import BackgroundFetchCore
import TestKit

/// A caller read through its pidfd: the pid it names, and whether the
/// process ended (so a recycled pid is not mistaken for it).
@Suite(.timeLimit(.minutes(1)))
struct ProcessFDTests {
    @Test func aPidfdNamesItsProcessAndTellsWhenItEnds() throws {
        let child = try ChildProcess("/bin/sleep", ["30"])
        let fd = ctestkit_pidfd_open(child.pid)
        try #require(fd >= 0, "pidfd_open: \(String(cString: strerror(errno)))")
        defer { close(fd) }
        #expect(ProcessFD.pid(of: fd) == child.pid)
        #expect(!ProcessFD.hasExited(fd))
        child.terminate(SIGKILL)
        #expect(ProcessFD.hasExited(fd), "a pidfd turns readable when its process ends")
        #expect(ProcessFD.pid(of: fd) == nil, "reaped: it names no pid any more")
    }

    @Test func anotherDescriptorIsNoPidfd() throws {
        let fd = open("/dev/null", O_RDONLY)
        defer { close(fd) }
        #expect(ProcessFD.pid(of: fd) == nil)
    }
}
