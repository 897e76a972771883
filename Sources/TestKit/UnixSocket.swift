import Glibc

/// Unix-domain sockets by path.
public enum UnixSocket {
    /// A listening stream socket at `path` (replacing a stale one), close-on-exec
    /// so only the child it is handed to keeps it. Anyone may connect, as to
    /// dbus-daemon's sockets: the bus's own policy decides who gets in.
    public static func listening(at path: String) throws(HarnessError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        unlink(path)
        guard bind(fd, path) == 0, chmod(path, 0o777) == 0, listen(fd, 256) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw HarnessError("cannot listen at \(path): \(reason)")
        }
        return fd
    }

    /// Binds `fd` to `path`: 0, or -1 with errno set (ENAMETOOLONG for a
    /// path too long for `sockaddr_un`), as bind(2).
    public static func bind(_ fd: Int32, _ path: String) -> Int32 {
        withAddress(path) { Glibc.bind(fd, $0, $1) }
    }

    /// Whether something listens at `path`: a stream connection to it is
    /// accepted (and closed at once). A socket file alone is not enough: a
    /// server binds before it listens.
    public static func accepts(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return withAddress(path) { Glibc.connect(fd, $0, $1) } == 0
    }

    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            errno = ENAMETOOLONG
            return -1
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in bytes.enumerated() { buffer[i] = byte }
            buffer[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
