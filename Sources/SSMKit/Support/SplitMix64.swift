/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast, seeded generator. Everything random in
/// SSMKit (initializations, synthetic tasks, benchmark inputs, tests) draws from a seed, so runs
/// repeat exactly; the system generator would make a system call per number.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The seed of stream `index` of `seed`: both go through the mixing function, because
    /// seeds (or indices) that differ by a multiple of the generator's increment would start
    /// one stream shifted (seed s at index t + 1 = seed s + 1 at index t).
    public static func seed(_ seed: UInt64, stream index: UInt64) -> UInt64 {
        var first = SplitMix64(seed: seed)
        var mixer = SplitMix64(seed: first.next() ^ index)
        return mixer.next()
    }
}
