import SSMKit

/// How the next token is chosen from a row of logits, in the order transformers applies its
/// logits processors:
///
/// 1. repetition penalty r: every token already in the sequence (prompt and output) has its
///    logit ℓ replaced by ℓ / r when ℓ > 0 and ℓ · r otherwise;
/// 2. temperature 0 takes the arg max (greedy; the first on a tie) and stops here; otherwise
///    the logits are divided by the temperature;
/// 3. top-k keeps the k largest (and every logit tied with the k-th);
/// 4. top-p keeps the smallest set of most likely tokens whose probability reaches p;
/// 5. min-p keeps the tokens whose probability is at least p times the largest;
/// 6. the token is drawn from the softmax of what is kept, by inverse CDF on the seeded
///    generator (SplitMix64): a seed makes a run repeatable.
public struct SamplingOptions: Sendable, Equatable {
    public var temperature: Double
    public var topK: Int?
    public var topP: Double?
    public var minP: Double?
    public var repetitionPenalty: Double
    public var seed: UInt64

    /// Greedy decoding by default.
    public init(temperature: Double = 0, topK: Int? = nil, topP: Double? = nil, minP: Double? = nil, repetitionPenalty: Double = 1,
                seed: UInt64 = 0) throws(PretrainedError) {
        guard temperature.isFinite, temperature >= 0 else { throw .argument(name: "temperature", expected: "a finite value ≥ 0, got \(temperature)") }
        if let topK, topK < 1 { throw .argument(name: "top-k", expected: "a positive count, got \(topK)") }
        if let topP, !(topP > 0 && topP <= 1) { throw .argument(name: "top-p", expected: "a probability in (0, 1], got \(topP)") }
        if let minP, !(minP >= 0 && minP <= 1) { throw .argument(name: "min-p", expected: "a probability in [0, 1], got \(minP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw .argument(name: "repetition-penalty", expected: "a finite value > 0, got \(repetitionPenalty)")
        }
        (self.temperature, self.topK, self.topP, self.minP, self.repetitionPenalty, self.seed) = (temperature, topK, topP, minP, repetitionPenalty, seed)
    }
}

/// Draws tokens by ``SamplingOptions``; one per sequence, its generator advancing once per draw.
public struct Sampler: Sendable {
    public let options: SamplingOptions
    private var generator: SplitMix64

    public init(_ options: SamplingOptions) {
        self.options = options
        generator = SplitMix64(seed: options.seed)
    }

    /// The next token from `logits` (V values) of a sequence whose tokens so far are `history`.
    public mutating func next<T: BinaryFloatingPoint>(_ logits: some Collection<T>, history: [Int]) -> Int {
        next(scores: logits.map { Double($0) }, history: history)
    }

    private mutating func next(scores: [Double], history: [Int]) -> Int {
        var scores = scores
        let o = options
        if o.repetitionPenalty != 1 {
            for id in Set(history) where id >= 0 && id < scores.count {
                scores[id] = scores[id] > 0 ? scores[id] / o.repetitionPenalty : scores[id] * o.repetitionPenalty
            }
        }
        if o.temperature == 0 { return Self.argmax(scores) }
        for k in scores.indices { scores[k] /= o.temperature }
        var kept = Array(scores.indices)
        if let k = o.topK, k < kept.count {
            let threshold = scores.sorted(by: >)[k - 1]
            kept = kept.filter { scores[$0] >= threshold }
        }
        if let p = o.topP, p < 1 {
            // Most likely first; keep through the token that brings the mass to p.
            let order = kept.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            let probabilities = Self.softmax(order.map { scores[$0] })
            var mass = 0.0, count = 0
            for q in probabilities {
                count += 1
                mass += q
                if mass >= p { break }
            }
            kept = Array(order.prefix(max(1, count)))
        }
        if let m = o.minP, m > 0 {
            let probabilities = Self.softmax(kept.map { scores[$0] })
            let largest = probabilities.max() ?? 0
            let filtered = zip(kept, probabilities).filter { $0.1 >= m * largest }.map(\.0)
            if !filtered.isEmpty { kept = filtered }
        }
        let probabilities = Self.softmax(kept.map { scores[$0] })
        let u = Double(generator.next() >> 11) * 0x1p-53
        var cumulative = 0.0
        for (k, q) in zip(kept, probabilities) {
            cumulative += q
            if u < cumulative { return k }
        }
        // Only scores that are not numbers can leave nothing kept (a NaN top-k threshold).
        return kept.last ?? Self.argmax(scores)
    }

    /// The first index of the largest score (NaNs never win).
    static func argmax(_ scores: [Double]) -> Int {
        var best = 0
        for k in scores.indices where scores[k] > scores[best] || scores[best].isNaN { best = k }
        return best
    }

    static func softmax(_ x: [Double]) -> [Double] {
        guard let top = x.max() else { return [] }
        let e = x.map { Double.exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }
}
