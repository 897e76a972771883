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

    /// A fresh temporary folder.
    static func temporaryDirectory(_ prefix: String = "bgfetch-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
