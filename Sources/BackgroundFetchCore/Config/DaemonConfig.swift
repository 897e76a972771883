#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The administrator's settings for `bgfetchd`, read from its INI-style key
/// file (by default `/etc/bgfetch/bgfetchd.conf`):
///
/// ```
/// [Scheduling]
/// MinimumIntervalFloor=60
/// FetchTimeout=30
/// DeferInPowerSaver=yes
///
/// [Limits]
/// TasksPerApp=64
/// TasksPerUser=1024
///
/// [Apps]
/// Restricted=org.example.Tracker;org.example.Miner
/// ```
///
/// Command-line flags override these values; the daemon applies them.
public struct DaemonConfig: Sendable, Equatable {
    /// The administrator's floor on every task's interval, in seconds (1...604800).
    public var minimumIntervalFloor: UInt32 = 60
    /// Seconds an app has to answer a `FetchRequested` (1...3600).
    public var fetchTimeout: UInt32 = 30
    /// The most tasks one app may register (1...10_000_000).
    public var tasksPerApp: Int = 64
    /// The most tasks one user's apps may register in all (1...10_000_000).
    public var tasksPerUser: Int = 1024
    /// App ids whose status is Restricted by the administrator's policy.
    public var restrictedApps: Set<String> = []
    /// Hold due fetches while power-profiles-daemon's profile is power-saver.
    public var deferInPowerSaver = true

    /// The defaults the contract gives.
    public init() {}

    /// Parses the key file: `#` and `;` comment lines, blank lines, `[Section]`
    /// headers and `Key=Value` lines (whitespace around key and value is trimmed).
    /// Keys not in the text keep their defaults; a repeated key's last value wins.
    ///
    /// - Throws: `DaemonConfigError`, one line naming the line number and the
    ///   problem, for an unknown section or key, a key before any section, a
    ///   malformed line or a number that is not an integer in range.
    public static func parse(_ text: String) throws(DaemonConfigError) -> DaemonConfig {
        var config = DaemonConfig()
        var section: Section?
        // "\r\n" is one Character, so splitting on isNewline handles CRLF files too.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        for (index, rawLine) in lines.enumerated() {
            let number = index + 1
            let line = rawLine.trimmed
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }

            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw .init(line: number, "malformed section header '\(line)'")
                }
                let name = String(line.dropFirst().dropLast())
                guard let known = Section(rawValue: name) else {
                    throw .init(line: number, "unknown section [\(name)]")
                }
                section = known
                continue
            }

            guard let equals = line.firstIndex(of: "=") else {
                throw .init(line: number, "expected 'Key=Value' or '[Section]', got '\(line)'")
            }
            let key = String(line[..<equals].trimmed)
            let value = String(line[line.index(after: equals)...].trimmed)
            guard !key.isEmpty else {
                throw .init(line: number, "missing key before '=' in '\(line)'")
            }
            guard let section else {
                throw .init(line: number, "key '\(key)' comes before any [Section] header")
            }
            try config.set(key: key, value: value, in: section, line: number)
        }
        return config
    }

    /// Reads and parses the key file at `path`.
    ///
    /// - Throws: `DaemonConfigError` naming the path: for a file that cannot be
    ///   read (`"<path>: cannot read: No such file or directory"`) or is invalid
    ///   (`"<path>: line 3: unknown key 'Foo' in section [Scheduling]"`).
    public static func load(path: String) throws(DaemonConfigError) -> DaemonConfig {
        let text: String
        switch readFile(path) {
        case .success(let contents): text = contents
        case .failure(let reason): throw DaemonConfigError(description: "\(path): cannot read: \(reason)")
        }
        do {
            return try parse(text)
        } catch {
            throw DaemonConfigError(description: "\(path): \(error.description)")
        }
    }

    /// Stores one value, checking the key belongs to the section and the value is valid.
    private mutating func set(
        key: String, value: String, in section: Section, line: Int
    ) throws(DaemonConfigError) {
        switch (section, key) {
        case (.scheduling, "MinimumIntervalFloor"):
            minimumIntervalFloor = UInt32(try Self.integer(value, key: key, in: 1...604_800, line: line))
        case (.scheduling, "FetchTimeout"):
            fetchTimeout = UInt32(try Self.integer(value, key: key, in: 1...3600, line: line))
        case (.scheduling, "DeferInPowerSaver"):
            deferInPowerSaver = try Self.boolean(value, key: key, line: line)
        case (.limits, "TasksPerApp"):
            tasksPerApp = try Self.integer(value, key: key, in: 1...10_000_000, line: line)
        case (.limits, "TasksPerUser"):
            tasksPerUser = try Self.integer(value, key: key, in: 1...10_000_000, line: line)
        case (.apps, "Restricted"):
            let items = value.split(separator: ";").map { String($0.trimmed) }
            restrictedApps = Set(items.filter { !$0.isEmpty })
        default:
            throw .init(line: line, "unknown key '\(key)' in section [\(section.rawValue)]")
        }
    }

    /// A decimal integer (ASCII digits only) within `range`.
    private static func integer(
        _ value: String, key: String, in range: ClosedRange<Int>, line: Int
    ) throws(DaemonConfigError) -> Int {
        guard !value.isEmpty, value.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let number = Int(value), range.contains(number)
        else {
            throw .init(
                line: line,
                "invalid value '\(value)' for \(key): expected an integer from "
                    + "\(range.lowerBound) to \(range.upperBound)"
            )
        }
        return number
    }

    /// A boolean as systemd's own files spell it: yes/no, true/false, on/off, 1/0.
    private static func boolean(_ value: String, key: String, line: Int) throws(DaemonConfigError) -> Bool {
        switch value.lowercased() {
        case "yes", "true", "on", "1": return true
        case "no", "false", "off", "0": return false
        default: throw .init(line: line, "invalid value '\(value)' for \(key): expected yes or no")
        }
    }

    /// The whole file as UTF-8 text, or the reason it cannot be read.
    private static func readFile(_ path: String) -> Result<String, ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(errno: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(errno: errno))
            }
            bytes.append(contentsOf: buffer[..<count])
        }
        // Decoding repairs bad sequences, so a valid file is one that round-trips.
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.utf8.elementsEqual(bytes) else {
            return .failure(ReadFailure(description: "not valid UTF-8 text"))
        }
        return .success(text)
    }

    /// The sections the key file may contain.
    private enum Section: String {
        case scheduling = "Scheduling"
        case limits = "Limits"
        case apps = "Apps"
    }

    private struct ReadFailure: Error, CustomStringConvertible {
        var description: String

        init(description: String) { self.description = description }
        init(errno code: Int32) { description = String(cString: strerror(code)) }
    }
}

/// A configuration file that cannot be used; `description` is one line
/// naming the line number (and, from `DaemonConfig.load`, the path) and the problem.
public struct DaemonConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The one-line reason, e.g. `"line 3: unknown key 'Foo' in section [Scheduling]"`.
    public let description: String

    /// An error with the given one-line description.
    public init(description: String) {
        self.description = description
    }

    /// An error about line `line` of the file.
    init(line: Int, _ problem: String) {
        self.description = "line \(line): \(problem)"
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace.
    fileprivate var trimmed: Substring {
        let scalars = Substring(self)
        guard let first = scalars.firstIndex(where: { !$0.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return scalars[first...last]
    }
}
