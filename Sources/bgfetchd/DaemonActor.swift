import DBus
import Glibc

/// The daemon's one event loop, as a global actor.
///
/// Everything marked `@DaemonActor` runs on the loop's thread, which also
/// serves every bus connection the daemon holds: the compiler checks that
/// the daemon's state is touched only there, and ``assumeIsolated(_:)``
/// checks at run time the few places it cannot see (libdbus callbacks).
@globalActor actor DaemonActor {
    static let shared = DaemonActor()

    /// The loop; its thread starts the first time the daemon needs it.
    static let loop: EventLoop = {
        do throws(DBusError) {
            return try EventLoop(name: "bgfetchd")
        } catch {
            let text = "bgfetchd: cannot start the event loop: \(error.message)\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            exit(1)
        }
    }()

    nonisolated var unownedExecutor: UnownedSerialExecutor { Self.loop.asUnownedSerialExecutor() }

    /// `function` as a plain function for the loop to call directly (a
    /// method handler): each call stops the process unless it is on the
    /// loop, then runs `function` as the actor. This is what
    /// ``assumeIsolated(_:file:line:)`` does, with the cast made once here
    /// rather than a closure made on every method call.
    static func calledOnLoop<A, R, E: Error>(
        _ function: @escaping @DaemonActor @Sendable (A) throws(E) -> R
    ) -> @Sendable (A) throws(E) -> R {
        typealias Plain = @Sendable (A) throws(E) -> R
        let plain = unsafeBitCast(function, to: Plain.self)
        return { argument throws(E) in
            preconditionOnLoop("a method handler ran off bgfetchd's event loop")
            return try plain(argument)
        }
    }

    /// Stops the process unless running as the actor. Its executor is the
    /// loop, asked directly whether it is running its work here (its thread,
    /// or the thread running its late jobs): no lookup in the concurrency runtime.
    private static func preconditionOnLoop(_ message: String, file: StaticString = #fileID, line: UInt = #line) {
        precondition(loop.isIsolatingCurrentContext() == true, message, file: file, line: line)
    }

    /// Runs `operation` as the actor, from code the loop called directly
    /// (a message handler, a timer, a reply). Stops the process when called
    /// anywhere else: that would be a bug, not a race to live with.
    static func assumeIsolated<T, E: Error>(
        _ operation: @DaemonActor () throws(E) -> T, file: StaticString = #fileID, line: UInt = #line
    ) throws(E) -> T {
        typealias Isolated = @DaemonActor () throws(E) -> T
        typealias Plain = () throws(E) -> T
        preconditionOnLoop("not on bgfetchd's event loop", file: file, line: line)
        return try withoutActuallyEscaping(operation) { (isolated: @escaping Isolated) throws(E) -> T in
            try unsafeBitCast(isolated, to: Plain.self)()
        }
    }
}
