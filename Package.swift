// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bgfetch",
    products: [
        .executable(name: "bgfetchd", targets: ["bgfetchd"]),
        .executable(name: "bgfetchctl", targets: ["bgfetchctl"]),
        .library(name: "BackgroundFetch", targets: ["BackgroundFetch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CDBus",
            pkgConfig: "dbus-1",
            providers: [.apt(["libdbus-1-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "DBus", dependencies: ["CDBus"]),
        // The bench's call client: plain C on libdbus, so the client is never the bottleneck.
        .target(name: "CBenchClient", dependencies: ["CDBus"]),
        // The wire contract: names, keys, enumerations, error names. No dependencies.
        .target(name: "BackgroundFetchContract"),
        // What the tests, the bench and the stress suite share; never shipped.
        .target(name: "TestKit", dependencies: ["BackgroundFetchContract", "BackgroundFetchCore", "CSQLite", "DBus", "CTestKit"]),
        .target(name: "CTestKit"),
        .target(
            name: "BackgroundFetchCore",
            dependencies: [
                "BackgroundFetchContract", "CSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .executableTarget(
            name: "bgfetchd",
            dependencies: [
                "DBus", "BackgroundFetchCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "BackgroundFetch", dependencies: ["DBus", "BackgroundFetchContract"]),
        .executableTarget(
            name: "bgfetchctl",
            dependencies: [
                "BackgroundFetch", "BackgroundFetchContract",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "bgfetch-stress",
            dependencies: [
                "DBus", "CSQLite", "TestKit", "BackgroundFetchContract",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "bgfetch-example",
            dependencies: ["BackgroundFetch"],
            path: "Examples/SwiftFetcher"
        ),
        .executableTarget(
            name: "bgfetch-bench",
            dependencies: [
                "DBus", "CSQLite", "TestKit", "BackgroundFetchContract", "BackgroundFetchCore", "CBenchClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "DBusTests", dependencies: ["DBus", "TestKit"]),
        .testTarget(name: "BackgroundFetchCoreTests", dependencies: ["BackgroundFetchCore", "TestKit", "CTestKit"]),
        .testTarget(name: "IntegrationTests", dependencies: ["DBus", "BackgroundFetch", "TestKit", "BackgroundFetchContract"]),
    ],
    swiftLanguageModes: [.v6]
)
