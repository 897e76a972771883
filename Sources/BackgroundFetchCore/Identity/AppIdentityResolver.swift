import Foundation

/// Works out which app a D-Bus caller is, from its process and the bus names
/// its connection owns (see "Identity" in the contract).
///
/// The resolver only reads files under `procRoot`, so tests can point it at a
/// fixture tree laid out like `/proc`.
public struct AppIdentityResolver: Sendable {
    /// The directory that plays the role of `/proc`.
    public let procRoot: String

    /// Creates a resolver reading process information below `procRoot`.
    public init(procRoot: String = "/proc") {
        self.procRoot = procRoot
    }

    /// Resolves the app id of a process, first match wins:
    ///
    /// 1. the Flatpak app id (`<procRoot>/<pid>/root/.flatpak-info`, `[Application] name=`);
    /// 2. the app id in the systemd unit holding the process
    ///    (`app-[<launcher>-]<app-id>[@<instance>|-<random>].scope|.service`),
    ///    read from `<procRoot>/<pid>/cgroup`;
    /// 3. the lowest-sorted well-known name in `ownedNames` (unique `:1.x` names are ignored);
    /// 4. the file name of the `<procRoot>/<pid>/exe` link target; where that
    ///    cannot be read (a service user may not read another uid's), the
    ///    file name of `argv[0]` from `<procRoot>/<pid>/cmdline`, else
    ///    `<procRoot>/<pid>/comm`.
    ///
    /// - Returns: nil only when none of these yields anything.
    public func appID(pid: UInt32?, ownedNames: [String]) -> String? {
        if let pid {
            let dir = "\(procRoot)/\(pid)"
            if let text = Self.readText("\(dir)/root/.flatpak-info"),
               let id = Self.appID(fromFlatpakInfo: text) {
                return id
            }
            if let text = Self.readText("\(dir)/cgroup"),
               let id = Self.appID(fromCgroupFile: text) {
                return id
            }
        }
        if let name = ownedNames.filter({ !$0.isEmpty && !$0.hasPrefix(":") }).min() {
            return name
        }
        if let pid {
            return executableName(pid: pid) ?? commandName(pid: pid) ?? processName(pid: pid)
        }
        return nil
    }

    /// The file name of `argv[0]`, as `<procRoot>/<pid>/cmdline` has it.
    func commandName(pid: UInt32) -> String? {
        guard let data = FileManager.default.contents(atPath: "\(procRoot)/\(pid)/cmdline"),
            let first = data.split(separator: 0, omittingEmptySubsequences: false).first,
            let name = String(decoding: first, as: UTF8.self).split(separator: "/").last, !name.isEmpty
        else { return nil }
        return String(name)
    }

    /// The kernel's name for the process (`<procRoot>/<pid>/comm`).
    func processName(pid: UInt32) -> String? {
        guard let text = Self.readText("\(procRoot)/\(pid)/comm") else { return nil }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// The value of `name=` in the `[Application]` group of a Flatpak
    /// `.flatpak-info` key file, or nil if there is none.
    public static func appID(fromFlatpakInfo text: String) -> String? {
        var inApplication = false
        var result: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                inApplication = line == "[Application]"
                continue
            }
            guard inApplication, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            if key == "name" {
                // Like GKeyFile, a later duplicate key wins.
                result = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            }
        }
        guard let result, !result.isEmpty else { return nil }
        return result
    }

    /// The app id in a systemd unit name, parsed like xdg-desktop-portal does:
    /// `app-[<launcher>-]<app-id>-<random>.scope` (or `.slice`),
    /// `app-[<launcher>-]<app-id>[@<instance>].service` (or `-autostart.service`).
    /// Systemd escapes such as `\x2d` are undone.
    ///
    /// `"app-gnome-org.gnome.Mail-12345.scope"` gives `"org.gnome.Mail"`.
    /// - Returns: nil if the name is not an app unit.
    public static func appID(fromUnitName unit: String) -> String? {
        guard unit.hasPrefix("app-") else { return nil }
        let body = unit.dropFirst(4)
        let kind: UnitKind
        let stem: Substring
        if let s = body.stripSuffix(".scope") ?? body.stripSuffix(".slice") {
            kind = .scope
            stem = s
        } else if let s = body.stripSuffix(".service") {
            kind = .service
            stem = s
        } else {
            return nil
        }
        // A launcher is an alphanumeric word followed by '-'. As with the
        // portal's regex, try with the launcher first, then without it.
        var candidates: [Substring] = []
        if let dash = stem.firstIndex(of: "-"), dash > stem.startIndex,
           stem[..<dash].allSatisfy(\.isASCIIAlphanumeric) {
            candidates.append(stem[stem.index(after: dash)...])
        }
        candidates.append(stem)
        for candidate in candidates {
            if let escaped = kind.escapedAppID(in: candidate) {
                let id = unescape(escaped)
                // Refuse ids that unescape to nothing or to control characters.
                if id.isEmpty || id.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return nil }
                return id
            }
        }
        return nil
    }

    /// The app id of the systemd unit a `/proc/<pid>/cgroup` file places the
    /// process in: the cgroup v2 line (`0::/…`) first, then the cgroup v1 lines.
    static func appID(fromCgroupFile text: String) -> String? {
        var unified: [String] = []
        var legacy: [String] = []
        for line in text.split(whereSeparator: \.isNewline) {
            // "<hierarchy-id>:<controllers>:<path>"; the path may itself contain ':'.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                unified.append(String(parts[2]))
            } else {
                legacy.append(String(parts[2]))
            }
        }
        for path in unified + legacy {
            if let unit = unitName(inCgroupPath: path), let id = appID(fromUnitName: unit) {
                return id
            }
        }
        return nil
    }

    /// The unit that holds a process in the given cgroup path, found the way
    /// `sd_pid_get_user_unit` does: the first component that is not a slice,
    /// looking below the user manager (`user@<uid>.service`) when there is one.
    /// A sub-cgroup inside the unit (delegation) does not change the answer.
    static func unitName(inCgroupPath path: String) -> String? {
        let components = path.split(separator: "/").filter { !$0.hasSuffix(".slice") }
        guard var unit = components.first else { return nil }
        if unit.hasPrefix("user@") && unit.hasSuffix(".service") {
            guard components.count > 1 else { return nil }
            unit = components[1]
        }
        return String(unit)
    }

    /// The file name of the process's executable, without a trailing " (deleted)".
    func executableName(pid: UInt32) -> String? {
        guard var target = try? FileManager.default.destinationOfSymbolicLink(
            atPath: "\(procRoot)/\(pid)/exe"
        ) else { return nil }
        if target.hasSuffix(" (deleted)") {
            target.removeLast(" (deleted)".count)
        }
        guard let name = target.split(separator: "/").last, !name.isEmpty else { return nil }
        return String(name)
    }

    /// The whole file as UTF-8 text, or nil if it cannot be read.
    static func readText(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(data: data, encoding: .utf8)
    }

    /// Undoes systemd unit-name escaping (`\xNN`); other backslashes are kept.
    static func unescape(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count, utf8[i + 1] == UInt8(ascii: "x"),
               let high = hexValue(utf8[i + 2]), let low = hexValue(utf8[i + 3]) {
                bytes.append(high << 4 | low)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// The two shapes of app unit names.
private enum UnitKind {
    /// `<app-id>-<random>`: the random part is the alphanumeric text after the last '-'.
    case scope
    /// `<app-id>[@<instance>]` or `<app-id>-autostart`.
    case service

    /// The (still escaped) app id in a unit name stem with `app-`, the
    /// launcher and the suffix removed, or nil if the stem has the wrong shape.
    func escapedAppID(in stem: Substring) -> Substring? {
        let id: Substring
        switch self {
        case .scope:
            guard let dash = stem.lastIndex(of: "-"),
                  stem[stem.index(after: dash)...].allSatisfy(\.isASCIIAlphanumeric)
            else { return nil }
            id = stem[..<dash]
        case .service:
            // App ids never contain '@', so everything after the first one is the instance.
            if let at = stem.firstIndex(of: "@") {
                id = stem[..<at]
            } else {
                id = stem.stripSuffix("-autostart") ?? stem
            }
        }
        return id.isEmpty ? nil : id
    }
}

extension Substring {
    fileprivate func stripSuffix(_ suffix: String) -> Substring? {
        hasSuffix(suffix) ? dropLast(suffix.count) : nil
    }
}

extension Character {
    fileprivate var isASCIIAlphanumeric: Bool {
        isASCII && (isLetter || isNumber)
    }
}
