/// What went wrong in the tests', the bench's or the stress suite's own
/// machinery (a bus that did not start, a daemon that did not take its
/// name): the one error type of the harness, one line for people.
public struct HarnessError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension HarnessError {
    /// Runs `body`; what it throws becomes a HarnessError that says
    /// `context` first (a HarnessError passes as it is).
    @discardableResult
    public static func wrapping<T>(_ context: String? = nil, _ body: () throws -> T) throws(HarnessError) -> T {
        do { return try body() } catch let error as HarnessError { throw error } catch {
            throw HarnessError(context.map { "\($0): \(error)" } ?? "\(error)")
        }
    }
}
