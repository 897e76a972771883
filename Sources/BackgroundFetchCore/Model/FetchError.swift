/// Why the service refused a request. Each kind is one of the contract's
/// errors, whose D-Bus name the daemon replies with.
public struct FetchError: Error, Sendable, Equatable, CustomStringConvertible {
    public typealias Kind = ServiceErrorName

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public static func invalidArgs(_ m: String) -> FetchError { FetchError(.invalidArgs, m) }
    public static func failed(_ m: String) -> FetchError { FetchError(.failed, m) }
    public static func noSuchTask(_ key: TaskKey) -> FetchError {
        FetchError(.noSuchTask, "app '\(CallerText.shown(key.app.appID))' has no task named '\(CallerText.shown(key.name))'")
    }
    public static func unknownRequest(_ id: UInt64) -> FetchError {
        FetchError(.unknownRequest, "request \(id) is not an outstanding fetch of this app (never sent, already finished or expired)")
    }
}
