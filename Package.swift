// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bgfetch",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "bgfetchd", targets: ["bgfetchd"]),
        .executable(name: "bgfetchctl", targets: ["bgfetchctl"]),
        .library(name: "BackgroundFetch", targets: ["BackgroundFetch"]),
        .executable(name: "bgfetch-bench", targets: ["bgfetch-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
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
        .target(name: "ProcessKit"),
        .target(
            name: "BackgroundFetchCore",
            dependencies: [
                "CSQLite",
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
        .target(name: "BackgroundFetch", dependencies: ["DBus"]),
        .executableTarget(
            name: "bgfetchctl",
            dependencies: [
                "BackgroundFetch", "DBus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "bgfetch-stress",
            dependencies: [
                "DBus", "CSQLite", "ProcessKit",
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
                "DBus", "CSQLite", "ProcessKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "DBusTests", dependencies: ["DBus", "ProcessKit"]),
        .testTarget(name: "BackgroundFetchCoreTests", dependencies: ["BackgroundFetchCore"]),
        .testTarget(name: "IntegrationTests", dependencies: ["DBus", "BackgroundFetch", "ProcessKit"]),
    ],
    swiftLanguageModes: [.v6]
)
