import SSMKit

/// The learning tasks of `ssm train`. The synthetic ones are generated from a seed (the
/// Mamba paper's §4.1 tasks and the adding problem of Hochreiter & Schmidhuber); `digits` is
/// the real 8×8 digits of scikit-learn read pixel by pixel.
public enum TaskKind: String, Sendable, CaseIterable {
    /// k tokens at the start, noise, then k markers: reproduce the tokens at the markers.
    case copying
    /// The same with the k tokens at random positions among the noise (Mamba paper Table 1).
    case selectiveCopying = "selective-copying"
    /// Random tokens with one trigger·value pair; at the final trigger, recall the value.
    case inductionHeads = "induction-heads"
    /// Two marked values in [0, 1) among L: output their sum (regression, correct within 0.04).
    case adding
    /// The 1797 8×8 images of sklearn's digits as sequences of 64 pixels: 10-way classification.
    case digits
}

/// A task instance: its sizes, what the model reads and predicts, and its batches.
///
/// Vocabulary of the token tasks: 0 is the noise/blank token, 1 the marker (copying) or the
/// trigger (induction heads), 2 … V − 1 the data tokens.
public struct TrainingTask: Sendable {
    public let kind: TaskKind
    /// Sequence length (for digits always 64).
    public let length: Int
    /// Vocabulary size V of the token tasks.
    public let vocabulary: Int
    /// Tokens to copy (copying tasks).
    public let tokensToCopy: Int
    let digits: DigitsData?

    /// - Parameters:
    ///   - kind: the task.
    ///   - length: the sequence length (nil: 100 for adding, 64 otherwise; digits is always 64).
    ///   - vocabulary: the token tasks' vocabulary V (0 noise, 1 marker, 2 … V − 1 data).
    ///   - tokensToCopy: the data tokens a copying task's sequence holds.
    ///   - digitsPath: a digits file in the layout of scripts/make_digits.py; nil reads the copy
    ///     bundled with SSMTraining.
    /// - Throws: `SSMError` naming the argument for impossible sizes, or an unreadable digits file.
    public init(_ kind: TaskKind, length: Int? = nil, vocabulary: Int = 16, tokensToCopy: Int = 8, digitsPath: String? = nil) throws(SSMError) {
        self.kind = kind
        self.vocabulary = vocabulary
        self.tokensToCopy = tokensToCopy
        let L = length ?? (kind == .adding ? 100 : 64)
        self.length = L
        switch kind {
        case .copying, .selectiveCopying:
            guard vocabulary >= 3 else { throw SSMError.option(name: "vocabulary", expected: "at least 3 (noise, marker, one data token), got \(vocabulary)") }
            guard tokensToCopy >= 1 else { throw SSMError.option(name: "tokensToCopy", expected: "at least 1, got \(tokensToCopy)") }
            guard L >= 2 * tokensToCopy else {
                throw SSMError.option(name: "length", expected: "at least twice the \(tokensToCopy) tokens to copy, got \(L)")
            }
            digits = nil
        case .inductionHeads:
            guard vocabulary >= 3 else { throw SSMError.option(name: "vocabulary", expected: "at least 3, got \(vocabulary)") }
            guard L >= 4 else { throw SSMError.option(name: "length", expected: "at least 4, got \(L)") }
            digits = nil
        case .adding:
            guard L >= 2 else { throw SSMError.option(name: "length", expected: "at least 2, got \(L)") }
            digits = nil
        case .digits:
            guard length == nil || length == 64 else { throw SSMError.option(name: "length", expected: "64 for digits (8×8 pixels), got \(L)") }
            digits = try DigitsData(path: digitsPath)
        }
    }

    /// What the model reads.
    public var input: ModelInput {
        switch kind {
        case .copying, .selectiveCopying, .inductionHeads: .tokens(vocabulary: vocabulary)
        case .adding: .features(2)
        case .digits: .features(1)
        }
    }

    /// What the model predicts.
    public var output: ModelOutput {
        switch kind {
        case .copying, .selectiveCopying, .inductionHeads: .perToken(classes: vocabulary)
        case .adding: .pooled(.last, classes: 1)
        case .digits: .pooled(.mean, classes: 10)
        }
    }

    public var loss: Loss { kind == .adding ? .meanSquared : .crossEntropy }

    /// Training batch number `index` of a run with `seed`: a pure function of both, so a
    /// resumed run sees the same batches. Digits draws training images with replacement.
    public func trainingBatch(size B: Int, seed: UInt64, index: Int) -> SequenceBatch {
        var rng = SplitMix64(seed: SplitMix64.seed(seed, stream: UInt64(truncatingIfNeeded: index)))
        if let digits {
            return digits.batch((0 ..< B).map { _ in digits.training[Int.random(in: 0 ..< digits.training.count, using: &rng)] })
        }
        return generate(B, &rng)
    }

    /// The validation set: `size` sequences from a stream disjoint from training (synthetic),
    /// or the fixed validation images (digits; `size` ignored).
    public func validationBatch(size B: Int, seed: UInt64) -> SequenceBatch {
        if let digits { return digits.batch(digits.validation) }
        var rng = SplitMix64(seed: ~seed &* 0xD1B5_4A32_D192_ED03)
        return generate(B, &rng)
    }

    func generate(_ B: Int, _ rng: inout SplitMix64) -> SequenceBatch {
        let (L, V, k) = (length, vocabulary, tokensToCopy)
        switch kind {
        case .copying, .selectiveCopying:
            var tokens = [Int](repeating: 0, count: B * L), targets = [Double](repeating: -1, count: B * L)
            for b in 0 ..< B {
                let data = (0 ..< k).map { _ in Int.random(in: 2 ..< V, using: &rng) }
                var positions = Array(0 ..< k)
                if kind == .selectiveCopying {
                    // k distinct positions among the first L − k, in order.
                    var chosen = Set<Int>()
                    while chosen.count < k { chosen.insert(Int.random(in: 0 ..< L - k, using: &rng)) }
                    positions = chosen.sorted()
                }
                for (j, position) in positions.enumerated() { tokens[b * L + position] = data[j] }
                for j in 0 ..< k {
                    tokens[b * L + L - k + j] = 1
                    targets[b * L + L - k + j] = Double(data[j])
                }
            }
            return SequenceBatch(batch: B, length: L, tokens: tokens, targets: targets)
        case .inductionHeads:
            var tokens = [Int](repeating: 0, count: B * L), targets = [Double](repeating: -1, count: B * L)
            for b in 0 ..< B {
                for t in 0 ..< L { tokens[b * L + t] = Int.random(in: 2 ..< V, using: &rng) }
                let position = Int.random(in: 0 ... L - 3, using: &rng)
                tokens[b * L + position] = 1
                tokens[b * L + L - 1] = 1
                targets[b * L + L - 1] = Double(tokens[b * L + position + 1])
            }
            return SequenceBatch(batch: B, length: L, tokens: tokens, targets: targets)
        case .adding:
            var features = [Double](repeating: 0, count: B * L * 2), targets = [Double](repeating: 0, count: B)
            for b in 0 ..< B {
                let first = Int.random(in: 0 ..< max(L / 2, 1), using: &rng)
                var second = Int.random(in: L / 2 ..< L, using: &rng)
                if second == first { second = L - 1 }
                for t in 0 ..< L { features[(b * L + t) * 2] = Double.random(in: 0 ..< 1, using: &rng) }
                features[(b * L + first) * 2 + 1] = 1
                features[(b * L + second) * 2 + 1] = 1
                targets[b] = features[(b * L + first) * 2] + features[(b * L + second) * 2]
            }
            return SequenceBatch(batch: B, length: L, features: features, targets: targets)
        case .digits:
            preconditionFailure("digits batches come from the data file")
        }
    }
}

/// scikit-learn's 8×8 digits as written by scripts/make_digits.py: images (1797, 64) with pixel
/// values 0 … 16, labels (1797), split (1797: 0 train, 1 validation).
struct DigitsData: Sendable {
    let images: [Double], labels: [Int]
    let training: [Int], validation: [Int]

    /// The file at `path`; without one, the copy bundled with SSMTraining.
    init(path: String?) throws(SSMError) {
        let argument = "digitsPath"
        guard let candidate = path ?? DigitsData.bundledPath else {
            throw SSMError.missing(argument: argument, expected: "a digits file: the copy bundled with SSMTraining "
                                   + "(\(DigitsData.bundleName)/digits.safetensors beside the executable) was not found")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: candidate) } catch {
            throw SSMError.value(argument: argument, expected: "a readable digits file, \(candidate): \(error)")
        }
        let expected = "a digits file holding images (n, 64) in 0 … 16, labels (n) in 0 … 9 and split (n), \(candidate)"
        guard let images = try? file.tensor("images", as: Double.self), let labels = try? file.tensor("labels", as: Double.self),
              let split = try? file.tensor("split", as: Double.self)
        else { throw SSMError.value(argument: argument, expected: expected) }
        let n = labels.count
        guard images.shape == [n, 64], split.count == n, labels.scalars.allSatisfy({ $0 >= 0 && $0 < 10 && $0 == $0.rounded() }),
              images.scalars.allSatisfy({ $0 >= 0 && $0 <= 16 }) else {
            throw SSMError.value(argument: argument, expected: expected)
        }
        self.images = images.scalars.map { $0 / 16 }
        self.labels = labels.scalars.map { Int($0) }
        training = (0 ..< n).filter { split.scalars[$0] == 0 }
        validation = (0 ..< n).filter { split.scalars[$0] != 0 }
        guard !training.isEmpty, !validation.isEmpty else {
            throw SSMError.value(argument: argument, expected: "training images (split 0) and validation images (split ≠ 0) in \(candidate), "
                                 + "got \(training.count) and \(validation.count)")
        }
    }

    /// The images `indices` as a (B, 64, 1) feature batch with their labels.
    func batch(_ indices: [Int]) -> SequenceBatch {
        SequenceBatch(batch: indices.count, length: 64, features: indices.flatMap { images[$0 * 64 ..< $0 * 64 + 64] },
                      targets: indices.map { Double(labels[$0]) })
    }
}

/// The settings with which `ssm train --task T` (and no other flag) solves each task at this
/// small scale (the runs behind them are in the Training article of the documentation).
public struct TaskDefaults: Sendable, Equatable {
    public var model: ModelFamily
    public var layers: Int, width: Int, state: Int
    public var batch: Int, steps: Int, learningRate: Double

    public static func `for`(_ kind: TaskKind) -> TaskDefaults {
        switch kind {
        case .copying: TaskDefaults(model: .s4d, layers: 2, width: 64, state: 64, batch: 32, steps: 600, learningRate: 3e-3)
        case .selectiveCopying: TaskDefaults(model: .mamba, layers: 2, width: 64, state: 16, batch: 32, steps: 2000, learningRate: 3e-3)
        case .inductionHeads: TaskDefaults(model: .mamba, layers: 2, width: 64, state: 16, batch: 32, steps: 1500, learningRate: 3e-3)
        case .adding: TaskDefaults(model: .mamba, layers: 2, width: 64, state: 16, batch: 32, steps: 1000, learningRate: 3e-3)
        case .digits: TaskDefaults(model: .s4d, layers: 4, width: 64, state: 64, batch: 32, steps: 600, learningRate: 1e-2)
        }
    }
}
