import Foundation
import Glibc

/// What the Desktop Entry Specification says about starting an app over
/// D-Bus: whether its entry is `DBusActivatable`, and where entries are
/// (the call itself is ``DesktopActivation``'s).
public enum DesktopEntry {
    /// Whether the text of a `.desktop` file says `DBusActivatable=true` in
    /// its `[Desktop Entry]` group (other groups, comments and localized
    /// keys do not count).
    public static func isDBusActivatable(_ text: String) -> Bool {
        var inMainGroup = false
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                inMainGroup = line == "[Desktop Entry]"
                continue
            }
            guard inMainGroup, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingSpaces
            let value = line[line.index(after: equals)...].trimmingSpaces
            if key == "DBusActivatable" { return value == "true" }
        }
        return false
    }

    /// The largest desktop entry read, in bytes.
    static let maximumSize = 256 * 1024

    /// Whether the first `<appID>.desktop` found in `directories` is
    /// `DBusActivatable` (false if it cannot be read); nil if there is none.
    public static func isDBusActivatable(appID: String, in directories: [String]) -> Bool? {
        guard !appID.isEmpty, !appID.contains("/") else { return nil }
        for directory in directories {
            let path = directory + "/" + appID + ".desktop"
            var status = stat()
            guard stat(path, &status) == 0 else { continue }
            // Only a regular file of a sane size is read (a FIFO or a link to
            // /dev/zero must not stall the daemon's loop).
            guard status.st_mode & S_IFMT == S_IFREG, status.st_size <= Self.maximumSize,
                let data = FileManager.default.contents(atPath: path)
            else { return false }
            return isDBusActivatable(String(decoding: data, as: UTF8.self))
        }
        return nil
    }

    /// The `applications` directories to search, in order (the first entry
    /// found wins): `$XDG_DATA_HOME` (default `~/.local/share`), then each
    /// of `$XDG_DATA_DIRS` (default `/usr/local/share:/usr/share`).
    public static func searchDirectories(environment: [String: String]) -> [String] {
        let home = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HOME"].map { $0 + "/.local/share" }
        let dirs = environment["XDG_DATA_DIRS"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/local/share:/usr/share"
        return ([home].compactMap { $0 } + dirs.split(separator: ":").map(String.init))
            .filter { $0.hasPrefix("/") }
            .map { ($0.hasSuffix("/") ? String($0.dropLast()) : $0) + "/applications" }
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return String(text)
    }
}
