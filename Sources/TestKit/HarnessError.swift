/// What went wrong in the tests', the bench's or the stress suite's own
/// machinery (a bus that did not start, a daemon that did not take its
/// name): the one error type of the harness, one line for people.
public struct HarnessError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
