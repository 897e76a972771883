/// A small seeded generator, so that a randomised test or stress run can be
/// repeated exactly: the same seed gives the same sequence everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `range`.
    public mutating func next(in range: ClosedRange<Int64>) -> Int64 {
        range.lowerBound + Int64(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    /// A generator for one worker, derived from this one's seed.
    public func derived(_ index: Int) -> SplitMix64 {
        var copy = SplitMix64(seed: state ^ (UInt64(index) &* 0xD6E8_FEB8_6659_FD93))
        _ = copy.next()
        return copy
    }
}
