import Foundation

/// Where the tests find the built binaries and the fixtures.
enum Paths {
    /// The build's products folder (`.build/debug`), next to the test bundle.
    static let products: URL = {
        if let dir = ProcessInfo.processInfo.environment["BGFETCH_PRODUCTS"] { return URL(fileURLWithPath: dir) }
        var url = Bundle.main.bundleURL
        if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        for candidate in [url, URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()] {
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("bgfetchd").path) { return candidate }
        }
        return url
    }()

    static var bgfetchd: String { products.appendingPathComponent("bgfetchd").path }
    static var bgfetchctl: String { products.appendingPathComponent("bgfetchctl").path }

    /// The package's top folder.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var fixtures: URL { packageRoot.appendingPathComponent("Tests/Fixtures") }
    static var interfaceXML: URL { packageRoot.appendingPathComponent("dbus/org.bgfetch.BackgroundFetch1.xml") }

    /// A fresh temporary folder, inside ``temporaryRoot``.
    static func temporaryDirectory(_ prefix: String = "bgfetch-test") -> URL {
        let url = temporaryRoot.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The one folder that holds every temporary folder of this test
    /// process: removed when the process exits, so runs leave nothing in
    /// /tmp even where a test's own clean-up did not happen. Readable by
    /// all, as the multi-user tests' other users reach sockets inside it.
    static let temporaryRoot: URL = {
        let url = URL(fileURLWithPath: temporaryRootPath(of: getpid()))
        try? FileManager.default.removeItem(at: url)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        chmod(url.path, 0o755)
        atexit { try? FileManager.default.removeItem(atPath: Paths.temporaryRootPath(of: getpid())) }
        return url
    }()

    private static func temporaryRootPath(of pid: pid_t) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("bgfetch-tests-\(pid)").path
    }
}
