import CDBus
import Glibc

/// Changes in directories, as events of the loop, through inotify: `handler`
/// runs on the loop's thread each time files in them appear, change, move or
/// go (once per batch of changes read together). No polling.
///
/// A directory that does not exist when the watch starts is not watched.
public final class LoopDirectoryWatch: LoopSource {
    let fd: Int32
    private let handler: @Sendable () -> Void
    unowned let loop: EventLoop
    var closed = false
    /// The directories actually watched (the others did not exist).
    public private(set) var watched: [String] = []

    init(loop: EventLoop, directories: [String], handler: @escaping @Sendable () -> Void) throws(DBusError) {
        loop.preconditionInLoop()
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw .failed("inotify_init1: \(String(cString: strerror(errno)))") }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB)
        for directory in directories where inotify_add_watch(fd, directory, mask) >= 0 {
            watched.append(directory)
        }
        self.loop = loop
        self.handler = handler
        loop.add(self)
    }

    func ready() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var changed = false
        while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 { changed = true }
        if changed { handler() }
    }

    /// Stops watching and releases the descriptor.
    public func invalidate() {
        stopWatching()
    }

}

extension EventLoop {
    /// Watches `directories` for changes to their files; `handler` runs on
    /// the loop's thread after each batch of changes. Call it there.
    public func watchDirectories(_ directories: [String], _ handler: @escaping @Sendable () -> Void) throws(DBusError)
        -> LoopDirectoryWatch
    {
        try LoopDirectoryWatch(loop: self, directories: directories, handler: handler)
    }
}
