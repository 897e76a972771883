/// A small seeded generator, so a run can be repeated with `--seed`.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for one worker, derived from this one's seed.
    func derived(_ index: Int) -> SplitMix64 {
        var copy = SplitMix64(seed: state ^ (UInt64(index) &* 0xD6E8_FEB8_6659_FD93))
        _ = copy.next()
        return copy
    }
}

/// The given percentile (0...100) of some samples.
func percentile(_ samples: [Double], _ p: Double) -> Double {
    guard !samples.isEmpty else { return 0 }
    let sorted = samples.sorted()
    let rank = Int((p / 100 * Double(sorted.count - 1)).rounded(.up))
    return sorted[min(max(rank, 0), sorted.count - 1)]
}
