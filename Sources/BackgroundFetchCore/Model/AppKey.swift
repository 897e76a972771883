import Logging

/// An app as the service knows it: the user it runs as and its app id.
public struct AppKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var uid: UInt32
    public var appID: String

    public init(uid: UInt32, appID: String) {
        self.uid = uid
        self.appID = appID
    }

    /// The per-user switch for every app (`SetAppEnabled("*", …)`).
    public static let everyApp = "*"

    public var description: String { "\(uid)/\(appID)" }

    public static func < (a: AppKey, b: AppKey) -> Bool { (a.uid, a.appID) < (b.uid, b.appID) }
}

/// One task of one app.
public struct TaskKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var app: AppKey
    public var name: String

    public init(app: AppKey, name: String) {
        self.app = app
        self.name = name
    }

    public var description: String { "\(app)/\(name)" }

    public static func < (a: TaskKey, b: TaskKey) -> Bool { (a.app, a.name) < (b.app, b.name) }
}

/// Who is calling: the app and the bus connection it called from.
public struct Caller: Sendable, Equatable {
    public var app: AppKey
    /// The caller's unique bus name.
    public var connection: String

    public init(app: AppKey, connection: String) {
        self.app = app
        self.connection = connection
    }
}

extension TaskKey {
    /// The task as a log line names it: the app (escaped and cut, as every
    /// caller string in a log), its uid and the task.
    public func logMetadata(_ more: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = more
        metadata["app"] = "\(CallerText.shown(app.appID))"
        metadata["uid"] = "\(app.uid)"
        metadata["task"] = "\(CallerText.shown(name))"
        return metadata
    }
}
