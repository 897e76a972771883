import DBus
import TestKit

extension PrivateBus {
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

    func connect(on loop: EventLoop) throws -> BusConnection {
        try BusConnection.connect(.address(address), on: loop)
    }
}

func call(_ destination: String, _ member: String = "Hello") throws(DBusError) -> Message {
    try Message.methodCall(destination: destination, path: "/org/example/Object", interface: "org.example.Test", member: member)
}
