import Glibc
import Logging

/// Log lines for the systemd journal, when standard error is connected to it.
///
/// Under systemd, standard error is a stream to journald and `JOURNAL_STREAM`
/// names it (`device:inode`). Each line then starts with its syslog priority
/// (`<4>` for a warning, as sd-daemon(3)'s `SD_WARNING`) so `journalctl -p`
/// filters by it, and carries no timestamp or program name: the journal
/// records both. Anywhere else the daemon logs with swift-log's
/// `StreamLogHandler`.
struct JournalLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// Whether standard error is the stream `JOURNAL_STREAM` names.
    static var standardErrorIsJournal: Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        var status = stat()
        guard parts.count == 2, fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(parts[0]) == UInt64(status.st_dev) && UInt64(parts[1]) == UInt64(status.st_ino)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let own = event.metadata { all.merge(own) { $1 } }
        var line = "<\(Self.priority(event.level))>\(event.message)"
        if !all.isEmpty {
            line += ": " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        line += "\n"
        // One write(2) per line, so lines from two threads never interleave.
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }

    /// The syslog priority of a level (sd-daemon(3)'s `SD_*` prefixes).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}
