/// Why the service refused a request. The daemon turns each kind into the
/// contract's D-Bus error name.
public struct FetchError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case invalidArgs
        case failed
        case noSuchTask
        case unknownRequest
        case denied
        case restricted
        case limitExceeded
        case accessDenied
    }

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
        FetchError(.noSuchTask, "app '\(key.app.appID)' has no task named '\(key.name)'")
    }
    public static func unknownRequest(_ id: UInt64) -> FetchError {
        FetchError(.unknownRequest, "request \(id) is not an outstanding fetch of this app (never sent, already finished or expired)")
    }
}
