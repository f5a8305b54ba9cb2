import SSMKit

/// A batch of sequences with targets. Legend: B batch · L length · F features.
public struct SequenceBatch: Sendable {
    public let batch: Int
    public let length: Int
    /// Token ids (B, L), for a ``ModelInput/tokens(vocabulary:)`` model.
    public let tokens: [Int]?
    /// Features (B, L, F), for a ``ModelInput/features(_:)`` model.
    public let features: [Double]?
    /// One target per output row: (B, L) for per-token outputs (−1 where nothing is asked), (B)
    /// for pooled ones. Class indices as Double, or real values for a regression.
    public let targets: [Double]

    public init(batch: Int, length: Int, tokens: [Int]? = nil, features: [Double]? = nil, targets: [Double]) {
        (self.batch, self.length, self.tokens, self.features, self.targets) = (batch, length, tokens, features, targets)
    }

    /// Sequences `r` alone; `perToken` says whether the targets are (B, L) or (B).
    public func rows(_ r: Range<Int>, perToken: Bool) -> SequenceBatch {
        let L = length
        return SequenceBatch(batch: r.count, length: L, tokens: tokens.map { Array($0[r.lowerBound * L ..< r.upperBound * L]) },
                             features: features.map { f in Array(f[f.count / batch * r.lowerBound ..< f.count / batch * r.upperBound]) },
                             targets: perToken ? Array(targets[r.lowerBound * L ..< r.upperBound * L]) : Array(targets[r]))
    }
}

/// A stack of pre-norm residual blocks, each around any ``SequenceMixer``, between an encoder
/// and a decoder, as the official example models (s4 `example.py` with `prenorm=True`; mamba
/// `MixerModel` + LM head). Legend: B batch · L length · H width · K classes.
///
///     x₀ = encoder(input)                          embedding or linear
///     xᵢ₊₁ = xᵢ + dropout(mixerᵢ(normᵢ(xᵢ)))         i = 0 … layers − 1
///     out = decoder(pool(norm_f(x)))               per token, or pooled per sequence
///
/// The ``ModelBackbone`` gives the names, norms and heads around the mixers (S4's: LayerNorm,
/// no final norm; Mamba's: RMSNorm and `norm_f`); each mixer declares its own parameters,
/// which sit under the backbone's block prefix (`s4_layers.{i}.` or
/// `backbone.layers.{i}.mixer.`). The model never looks at what kind of mixer a block has: a
/// stack may mix S4D, S4, Mamba and mixers of your own (``init(mixers:input:output:backbone:dropout:threads:)``).
///
/// The residual stream is channel-major (B, H, L) when every mixer is and the norms allow it
/// (S4's backbone), token-major (B, L, H) otherwise; a block whose mixer takes the other layout
/// is transposed in and out. Buffers for each (B, L) are made once and reused: a step
/// allocates them only the first time (or while a caller still holds the last activations).
public struct SequenceModel<T: SSMScalar>: @unchecked Sendable {
    /// The configuration the model was built from; nil for a stack of caller-made mixers.
    public let configuration: ModelConfiguration?
    public let input: ModelInput
    public let output: ModelOutput
    public let width: Int
    public let dropout: Double
    public let backbone: ModelBackbone
    /// The blocks' mixers, first to last.
    public let mixers: [any SequenceMixer<T>]
    public let threads: Int
    /// The layout of parameters, gradients and optimizer moments (every value zero).
    public let layout: ParameterSet<T>
    /// The residual stream's layout.
    public let stream: SequenceLayout
    let encoderRange: (weight: Range<Int>, bias: Range<Int>?)
    let blocks: [Block]
    let finalNormRange: Range<Int>?
    let decoderRange: (weight: Range<Int>, bias: Range<Int>?)
    let passes = ReusePool<PassShape, Pass<T>>(capacity: 4)

    /// Where one block's parameters sit in the flat buffer.
    struct Block {
        let mixer: ParameterLayout
        let mixerOffset: Int
        /// weight, then bias for LayerNorm.
        let norm: Range<Int>
    }

    /// A model of ``ModelFamily`` mixers, as `configuration` says.
    ///
    /// The FFT planner effort of S4/S4D mixers: FFTW_MEASURE picks among algorithms by timing
    /// them, so two processes can choose differently and round differently; the default,
    /// `.estimate`, chooses the same plans every time, so that a run, and a run resumed from a
    /// checkpoint in another process, repeat bit for bit.
    public init(configuration c: ModelConfiguration, threads: Int? = nil, effort: FFTPlannerEffort = .estimate) throws(SSMError) {
        let threads = threads ?? WorkerPool.onlineProcessorCount()
        var mixers: [any SequenceMixer<T>] = []
        for family in c.mixers { mixers.append(try family.makeMixer(T.self, width: c.width, state: c.state, threads: threads, effort: effort)) }
        try self.init(mixers: mixers, input: c.input, output: c.output, backbone: c.backbone, dropout: c.dropout, threads: threads,
                      configuration: c)
    }

    /// A stack of the given mixers (of one width H) under `backbone`'s names, norms and heads.
    /// - Throws: `SSMError` for no mixers, mixers of different widths, or an impossible
    ///   input, output or dropout.
    public init(mixers: [any SequenceMixer<T>], input: ModelInput, output: ModelOutput, backbone: ModelBackbone,
                dropout: Double = 0, threads: Int? = nil) throws(SSMError) {
        try self.init(mixers: mixers, input: input, output: output, backbone: backbone, dropout: dropout, threads: threads, configuration: nil)
    }

    private init(mixers: [any SequenceMixer<T>], input: ModelInput, output: ModelOutput, backbone: ModelBackbone, dropout: Double,
                 threads: Int?, configuration: ModelConfiguration?) throws(SSMError) {
        guard let first = mixers.first else { throw SSMError.value(argument: "mixers", expected: "at least one mixer") }
        let H = first.width
        if let other = mixers.firstIndex(where: { $0.width != H }) {
            throw SSMError.value(argument: "mixers", expected: "mixers of one width, got \(H) and \(mixers[other].width) (block \(other))")
        }
        guard output.classes >= 1 else { throw SSMError.value(argument: "classes", expected: "a positive count, got \(output.classes)") }
        switch input {
        case let .tokens(v) where v < 1: throw SSMError.value(argument: "vocabulary", expected: "a positive count, got \(v)")
        case let .features(f) where f < 1: throw SSMError.value(argument: "features", expected: "a positive count, got \(f)")
        default: break
        }
        guard dropout >= 0, dropout < 1 else { throw SSMError.value(argument: "dropout", expected: "a probability in [0, 1), got \(dropout)") }
        if let threads, threads < 1 { throw SSMError.value(argument: "threads", expected: "a positive count, got \(threads)") }
        (self.configuration, self.input, self.output, self.width, self.dropout, self.backbone, self.mixers) =
            (configuration, input, output, H, dropout, backbone, mixers)
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        stream = backbone == .s4 && mixers.allSatisfy { $0.layout == .channelMajor } ? .channelMajor : .tokenMajor

        // The flat layout, in the official state_dict's grouping.
        let names = ModelNames(backbone: backbone, input: input)
        var set = ParameterSet<T>()
        func add(_ name: String, _ shape: [Int], _ group: ParameterGroup = .standard) -> Range<Int> {
            set.add(name, shape: shape, group: group, values: [T](repeating: 0, count: shape.reduce(1, *)))
            return set.ranges[name]!
        }
        let K = output.classes
        switch input {
        case let .tokens(V): encoderRange = (add(names.encoder + "weight", [V, H]), nil)
        case let .features(F): encoderRange = (add(names.encoder + "weight", [H, F]), add(names.encoder + "bias", [H]))
        }
        var blocks: [Block] = []
        for (i, mixer) in mixers.enumerated() {
            func addNorm() -> Range<Int> {
                let w = add(names.norm(i) + "weight", [H])
                return backbone == .s4 ? w.lowerBound ..< add(names.norm(i) + "bias", [H]).upperBound : w
            }
            let mixerLayout = ParameterLayout(mixer.parameterDeclarations)
            var norm: Range<Int>? = backbone == .mamba ? addNorm() : nil
            let offset = set.scalarCount
            for d in mixer.parameterDeclarations { _ = add(names.mixer(i) + d.name, d.shape, d.group) }
            if norm == nil { norm = addNorm() }
            blocks.append(Block(mixer: mixerLayout, mixerOffset: offset, norm: norm!))
        }
        self.blocks = blocks
        finalNormRange = backbone == .mamba ? add(names.finalNorm + "weight", [H]) : nil
        decoderRange = (add(names.decoder + "weight", [K, H]), backbone == .s4 ? add(names.decoder + "bias", [K]) : nil)
        layout = set
    }

    /// Layers, as blocks.
    public var layers: Int { mixers.count }

    // MARK: Initialization

    /// Seeded initial parameters: PyTorch's defaults for the encoder and decoder (`nn.Linear`
    /// U(±1/√fan_in); `nn.Embedding` N(0, 1), or N(0, 0.02²) under Mamba's backbone as its
    /// `_init_weights`), norms at weight 1 and bias 0, and each mixer's declared initialization,
    /// drawn from its own generator (seeded from the model's, block after block), with Mamba's
    /// backbone dividing residual output projections by √layers.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func initialParameters(seed: UInt64) throws(SSMError) -> ParameterSet<T> {
        let H = width
        var rng = SplitMix64(seed: seed)
        var set = layout
        func fill(_ range: Range<Int>, _ values: [Double]) {
            for (i, v) in values.enumerated() { set.storage[range.lowerBound + i] = T(v) }
        }
        func draw(_ range: Range<Int>, _ i: ParameterInitialization) throws(SSMError) { fill(range, try i.values(count: range.count, rng: &rng)) }
        switch input {
        case .tokens: try draw(encoderRange.weight, .normal(deviation: backbone == .mamba ? 0.02 : 1))
        case let .features(F):
            try draw(encoderRange.weight, .uniform(bound: 1 / Double(F).squareRoot()))
            try draw(encoderRange.bias!, .uniform(bound: 1 / Double(F).squareRoot()))
        }
        let rescale = backbone == .mamba ? 1 / Double(layers).squareRoot() : 1
        for block in blocks {
            var blockRNG = SplitMix64(seed: rng.next())
            for (d, r) in zip(block.mixer.declarations, block.mixer.ranges) {
                var v = try d.initialization.values(count: d.count, rng: &blockRNG)
                if d.feedsResidual { v = v.map { $0 * rescale } }
                fill(block.mixerOffset + r.lowerBound ..< block.mixerOffset + r.upperBound, v)
            }
            fill(block.norm.lowerBound ..< block.norm.lowerBound + H, [Double](repeating: 1, count: H))
        }
        if let finalNormRange { fill(finalNormRange, [Double](repeating: 1, count: H)) }
        try draw(decoderRange.weight, .uniform(bound: 1 / Double(H).squareRoot()))
        if let bias = decoderRange.bias { try draw(bias, .uniform(bound: 1 / Double(H).squareRoot())) }
        return set
    }

    /// Throws unless `parameters` has exactly this model's names and shapes, all finite.
    public func check(_ parameters: ParameterSet<T>) throws(SSMError) {
        for name in layout.names {
            guard let shape = parameters.shapes[name] else {
                throw SSMError.missing(argument: name, expected: "shape \(layout.shapes[name]!)")
            }
            if shape != layout.shapes[name]! { throw SSMError.shape(argument: name, expected: "\(layout.shapes[name]!)", actual: shape) }
            if parameters[name].contains(where: { !$0.isFinite }) { throw SSMError.value(argument: name, expected: "finite values") }
        }
        if let extra = parameters.names.first(where: { layout.shapes[$0] == nil }) {
            throw SSMError.unexpected(argument: extra, expected: "this model has no such parameter")
        }
    }
}

/// The official names of a backbone's parts.
struct ModelNames {
    let backbone: ModelBackbone, input: ModelInput

    var encoder: String {
        switch (backbone, input) {
        case (.mamba, .tokens): "backbone.embedding."
        case (.mamba, .features): "backbone.encoder."
        case (.s4, _): "encoder."
        }
    }
    func norm(_ i: Int) -> String { backbone == .mamba ? "backbone.layers.\(i).norm." : "norms.\(i)." }
    func mixer(_ i: Int) -> String { backbone == .mamba ? "backbone.layers.\(i).mixer." : "s4_layers.\(i)." }
    var finalNorm: String { "backbone.norm_f." }
    var decoder: String { backbone == .mamba ? "lm_head." : "decoder." }
}
