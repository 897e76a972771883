import DBus
import Foundation
import TestKit

/// A private dbus-daemon in a temporary folder, stopped when the test is done.
final class PrivateBus: Sendable {
    let address: BusAddress
    private let folder: String
    private let daemon: ChildProcess

    init() throws {
        folder = NSTemporaryDirectory() + "dbus-tests-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let config = folder + "/bus.conf"
        try SessionBusConfig.text.write(toFile: config, atomically: true, encoding: .utf8)
        daemon = try DBusDaemon.launch(config: config, socket: folder + "/bus")
        address = .address("unix:path=\(folder)/bus")
    }

    deinit {
        daemon.terminate()
        try? FileManager.default.removeItem(atPath: folder)
    }

    func connect(on loop: EventLoop? = nil) throws -> BusConnection {
        try BusConnection.connect(address, on: loop, threadName: "dbus-test")
    }

    /// A connection owning `name` that takes every method call and never answers.
    func silentPeer(named name: String) throws -> (BusConnection, received: AsyncStream<Void>) {
        let peer = try connect()
        guard try peer.requestName(name) == .primaryOwner else { throw DBusError.failed("\(name) is taken") }
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        peer.setMessageHandler { message in
            guard message.kind == .methodCall else { return false }
            continuation.yield()
            return true
        }
        return (peer, stream)
    }
}

func call(_ destination: String, _ member: String = "Hello") throws(DBusError) -> Message {
    try Message.methodCall(destination: destination, path: "/org/example/Object", interface: "org.example.Test", member: member)
}
