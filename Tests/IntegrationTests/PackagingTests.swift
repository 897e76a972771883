import Foundation
import Testing

/// The installed tree and the systemd units, checked as an administrator would.
@Suite(.timeLimit(.minutes(3)))
struct PackagingTests {
    /// Runs `make install-files` into a temporary DESTDIR with the built binaries.
    func installTree(prefix: String = "/usr") throws -> URL {
        let destdir = Paths.temporaryDirectory("bgfetch-install")
        let result = try Command.run(
            "/usr/bin/make",
            ["-s", "-C", Paths.packageRoot.path, "install-files", "DESTDIR=\(destdir.path)", "PREFIX=\(prefix)", "BUILD_BIN=\(Paths.products.path)"],
            timeout: 120)
        #expect(result.status == 0, "\(result)")
        return destdir
    }

    static let expectedFiles = [
        "usr/bin/bgfetchd", "usr/bin/bgfetchctl",
        "usr/share/dbus-1/interfaces/org.bgfetch.BackgroundFetch1.xml",
        "usr/share/dbus-1/system.d/org.bgfetch.BackgroundFetch1.conf",
        "usr/share/dbus-1/system-services/org.bgfetch.BackgroundFetch1.service",
        "usr/share/dbus-1/services/org.bgfetch.BackgroundFetch1.service",
        "usr/lib/systemd/system/bgfetchd.service", "usr/lib/systemd/user/bgfetchd.service",
        "usr/lib/sysusers.d/bgfetch.conf", "usr/share/doc/bgfetch/README.md", "usr/share/doc/bgfetch/LICENSE",
        "usr/share/bash-completion/completions/bgfetchctl", "usr/share/zsh/site-functions/_bgfetchctl",
        "usr/share/fish/vendor_completions.d/bgfetchctl.fish", "etc/bgfetch/bgfetchd.conf",
        "usr/share/man/man1/bgfetchctl.1", "usr/share/man/man8/bgfetchd.8", "usr/share/man/man5/bgfetchd.conf.5",
        "usr/share/man/man5/org.bgfetch.BackgroundFetch1.5",
    ]

    func files(under root: URL) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: root.path)
        var found: [String] = []
        while let path = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory), !isDirectory.boolValue {
                found.append(path)
            }
        }
        return found.sorted()
    }

    @Test func installLaysOutTheTreeAndUninstallRemovesIt() throws {
        let root = try installTree()
        #expect(files(under: root) == Self.expectedFiles.sorted())
        #expect(access(root.appendingPathComponent("usr/bin/bgfetchd").path, X_OK) == 0)
        let session = try String(contentsOf: root.appendingPathComponent("usr/share/dbus-1/services/org.bgfetch.BackgroundFetch1.service"), encoding: .utf8)
        #expect(session.contains("Exec=/usr/bin/bgfetchd --session"))
        let unit = try String(contentsOf: root.appendingPathComponent("usr/lib/systemd/system/bgfetchd.service"), encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/bin/bgfetchd --system"))
        #expect(!unit.contains("@bindir@"))
        let system = try String(contentsOf: root.appendingPathComponent("usr/share/dbus-1/system-services/org.bgfetch.BackgroundFetch1.service"), encoding: .utf8)
        #expect(system.contains("Exec=/bin/false") && system.contains("SystemdService=bgfetchd.service") && system.contains("User="))
        #expect(unit.contains("Documentation=file:///usr/share/doc/bgfetch/README.md"))
        // The commented defaults parse as the defaults.
        let defaults = try Command.run(
            Paths.bgfetchd, ["--config", root.appendingPathComponent("etc/bgfetch/bgfetchd.conf").path, "--print-introspection"])
        #expect(defaults.status == 0, "\(defaults)")
        let completion = try String(contentsOf: root.appendingPathComponent("usr/share/bash-completion/completions/bgfetchctl"), encoding: .utf8)
        #expect(completion.contains("bgfetchctl"))

        let uninstall = try Command.run(
            "/usr/bin/make", ["-s", "-C", Paths.packageRoot.path, "uninstall", "DESTDIR=\(root.path)", "PREFIX=/usr"])
        #expect(uninstall.status == 0)
        #expect(files(under: root).isEmpty)
    }

    /// Under another prefix the policy goes where the system bus reads it,
    /// and the units' documentation follows the prefix.
    @Test func aLocalPrefixKeepsThePolicyWhereTheBusReadsIt() throws {
        let root = try installTree(prefix: "/usr/local")
        let found = files(under: root)
        #expect(found.contains("etc/dbus-1/system.d/org.bgfetch.BackgroundFetch1.conf"), "\(found)")
        #expect(!found.contains { $0.hasPrefix("usr/local/share/dbus-1/system.d") })
        let unit = try String(contentsOf: root.appendingPathComponent("usr/local/lib/systemd/system/bgfetchd.service"), encoding: .utf8)
        #expect(unit.contains("Documentation=file:///usr/local/share/doc/bgfetch/README.md"))
        #expect(unit.contains("ExecStart=/usr/local/bin/bgfetchd --system"))
        let uninstall = try Command.run(
            "/usr/bin/make", ["-s", "-C", Paths.packageRoot.path, "uninstall", "DESTDIR=\(root.path)", "PREFIX=/usr/local"])
        #expect(uninstall.status == 0 && files(under: root).isEmpty, "\(files(under: root))")
    }

    @Test func theUnitsVerifyAndTheSystemUnitIsHardened() throws {
        let root = try installTree(prefix: Paths.products.path)
        let unitDir = root.appendingPathComponent(Paths.products.path + "/lib/systemd")
        // verify checks that ExecStart exists: point the unit at the built binary.
        let system = Paths.temporaryDirectory("bgfetch-units")
        let unitText = try String(contentsOf: unitDir.appendingPathComponent("system/bgfetchd.service"), encoding: .utf8)
            .replacingOccurrences(of: Paths.products.path + "/bin/", with: Paths.products.path + "/")
        try unitText.write(to: system.appendingPathComponent("bgfetchd.service"), atomically: true, encoding: .utf8)
        let verify = try Command.run("/usr/bin/systemd-analyze", ["verify", system.appendingPathComponent("bgfetchd.service").path])
        #expect(verify.status == 0, "\(verify)")
        #expect(verify.stderr.isEmpty, "verify warned: \(verify.stderr)")

        let userDir = Paths.temporaryDirectory("bgfetch-user-units")
        let userText = try String(contentsOf: unitDir.appendingPathComponent("user/bgfetchd.service"), encoding: .utf8)
            .replacingOccurrences(of: Paths.products.path + "/bin/", with: Paths.products.path + "/")
        try userText.write(to: userDir.appendingPathComponent("bgfetchd.service"), atomically: true, encoding: .utf8)
        let runtime = Paths.temporaryDirectory("bgfetch-runtime")
        let verifyUser = try Command.run(
            "/usr/bin/systemd-analyze", ["--user", "verify", userDir.appendingPathComponent("bgfetchd.service").path],
            environment: ["XDG_RUNTIME_DIR": runtime.path])
        #expect(verifyUser.status == 0, "\(verifyUser)")
        #expect(verifyUser.stderr.isEmpty, "verify warned: \(verifyUser.stderr)")

        let security = try Command.run(
            "/usr/bin/systemd-analyze",
            ["security", "--offline=true", "--threshold=15", system.appendingPathComponent("bgfetchd.service").path])
        #expect(security.status == 0, "\(security)")
        let line = try #require(security.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") })
        let score = line.split(separator: " ").compactMap { Double($0) }.first
        #expect((score ?? 99) <= 1.5, "\(line)")

        let userSecurity = try Command.run(
            "/usr/bin/systemd-analyze",
            ["security", "--user", "--offline=true", "--threshold=60", userDir.appendingPathComponent("bgfetchd.service").path],
            environment: ["XDG_RUNTIME_DIR": runtime.path])
        #expect(userSecurity.status == 0, "\(userSecurity)")
        let userLine = try #require(userSecurity.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") })
        let userScore = userLine.split(separator: " ").compactMap { Double($0) }.first
        // 5.9: the offline analysis scores a user unit as if it ran as root
        // with every capability; what a user manager can apply without
        // namespaces is all there (RealSystemdTests runs it under one).
        #expect((userScore ?? 99) <= 6.0, "\(userLine)")
        #expect(
            !userText.split(separator: "\n").contains { $0.hasPrefix("CapabilityBoundingSet=") },
            "a user manager cannot apply it (218/CAPABILITIES)")
    }
}

/// What `make install` installs runs on a machine without Swift.
@Suite(.timeLimit(.minutes(1)))
struct StaticBinaryTests {
    /// `make test` runs `make release` first: building here would hold one of
    /// the test runner's few threads for minutes.
    @Test func theReleaseBinariesNeedNoSwiftRuntime() throws {
        let bin = Paths.packageRoot.appendingPathComponent(".build-release/release")
        for binary in ["bgfetchd", "bgfetchctl"] {
            let path = bin.appendingPathComponent(binary).path
            try #require(access(path, X_OK) == 0, "\(path) is missing: run make release (make test does)")
            let ldd = try Command.run("/usr/bin/ldd", [path])
            #expect(ldd.status == 0 && ldd.stdout.contains("libc.so"), "\(ldd)")
            #expect(!ldd.stdout.contains("swift"), "\(binary) links a Swift library:\n\(ldd.stdout)")
            // As root, with /opt/swift hidden by an empty tmpfs in a mount namespace of its own.
            if getuid() == 0 {
                let hidden = try Command.run(
                    "/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", "mount -t tmpfs none /opt/swift && \"$0\" --version", path])
                #expect(hidden.status == 0 && hidden.stdout.contains("0."), "\(binary) without /opt/swift: \(hidden)")
            }
        }
    }
}

/// The man pages in the repository are what the code and the files make of
/// them now: regenerated here, they must not differ.
@Suite(.timeLimit(.minutes(2)))
struct ManPageTests {
    static let date = "2026-12-03"

    func committed(_ name: String) throws -> String {
        try String(contentsOf: Paths.packageRoot.appendingPathComponent("man/\(name)"), encoding: .utf8)
    }

    @Test func theCommandLinePagesMatchTheCommandLines() throws {
        let generator = Paths.products.appendingPathComponent("generate-manual").path
        try #require(access(generator, X_OK) == 0, "build it first: swift build --product generate-manual (make test does)")
        let out = Paths.temporaryDirectory("bgfetch-man")
        for (tool, section) in [("bgfetchd", "8"), ("bgfetchctl", "1")] {
            let run = try Command.run(
                generator,
                [Paths.products.appendingPathComponent(tool).path, "--section", section, "--date", Self.date,
                 "--output-directory", out.path])
            try #require(run.status == 0, "\(run)")
            let fresh = try String(contentsOf: out.appendingPathComponent("\(tool).\(section)"), encoding: .utf8)
            #expect(fresh == (try committed("\(tool).\(section)")), "man/\(tool).\(section) is stale: run make man")
        }
    }

    @Test func theFilePagesMatchTheirFiles() throws {
        for (script, source, page) in [
            ("conf-man.py", "systemd/bgfetchd.conf", "bgfetchd.conf.5"),
            ("dbus-man.py", "dbus/org.bgfetch.BackgroundFetch1.xml", "org.bgfetch.BackgroundFetch1.5"),
        ] {
            let root = Paths.packageRoot
            let run = try Command.run(
                "/usr/bin/python3",
                [root.appendingPathComponent("scripts/\(script)").path, root.appendingPathComponent(source).path, Self.date])
            try #require(run.status == 0, "\(run)")
            #expect(run.stdout == (try committed(page)), "man/\(page) is stale: run make man")
        }
        // The API page names every member of the interface file.
        let api = try committed("org.bgfetch.BackgroundFetch1.5")
        for member in ["RegisterTask", "FinishFetch", "FetchRequested", "GetAppStatus", "ListApps", "FetchFinished", "Version"] {
            #expect(api.contains(member), "\(member)")
        }
    }

    /// The commented settings file holds every key with its real default.
    @Test func theSettingsFileShowsTheDefaults() throws {
        let text = try String(contentsOf: Paths.packageRoot.appendingPathComponent("systemd/bgfetchd.conf"), encoding: .utf8)
        let uncommented = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("#") && line.contains("=") && !line.hasPrefix("# ") ? String(line.dropFirst()) : String(line)
        }.joined(separator: "\n")
        let file = Paths.temporaryDirectory("bgfetch-conf").appendingPathComponent("bgfetchd.conf")
        try uncommented.write(to: file, atomically: true, encoding: .utf8)
        let run = try Command.run(Paths.bgfetchd, ["--config", file.path, "--print-introspection"])
        #expect(run.status == 0, "every key in the file is one bgfetchd knows: \(run)")
        for key in ["MinimumIntervalFloor=60", "FetchTimeout=30", "TasksPerApp=64", "TasksPerUser=1024", "Restricted="] {
            #expect(uncommented.contains("\n" + key), "\(key)")
        }
    }
}
