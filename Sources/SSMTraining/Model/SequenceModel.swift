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
}

/// A stack of pre-norm residual blocks between an encoder and a decoder, as the official
/// example models (s4 `example.py` with `prenorm=True`; mamba `MixerModel` + LM head).
/// Legend: B batch · L length · H width · K classes; hidden states are token-major (B, L, H).
///
///     x₀ = encoder(input)                          embedding or linear
///     xᵢ₊₁ = xᵢ + dropout(mixerᵢ(normᵢ(xᵢ)))         i = 0 … layers − 1
///     out = decoder(pool(norm_f(x)))               per token, or pooled per sequence
///
/// S4/S4D models use LayerNorm and no final norm (as `example.py`); Mamba models use RMSNorm
/// and `norm_f` (as `MixerModel`). Parameter names are the official ones:
///
/// - S4/S4D: `encoder.*`, `s4_layers.{i}.*` (``S4DLayer`` / ``S4Layer``), `norms.{i}.weight|bias`,
///   `decoder.weight|bias`;
/// - Mamba: `backbone.embedding.weight` (tokens) or `backbone.encoder.weight|bias` (features),
///   `backbone.layers.{i}.norm.weight`, `backbone.layers.{i}.mixer.*` (`MambaBlock`),
///   `backbone.norm_f.weight`, `lm_head.weight` (no bias): the state_dict of
///   `MambaLMHeadModel` with `rms_norm=True` and untied embeddings.
public struct SequenceModel<T: SafeTensorsScalar>: Sendable {
    public let configuration: ModelConfiguration
    public var threads: Int
    /// The FFT planner effort of the S4/S4D layers. FFTW_MEASURE picks among algorithms by timing
    /// them, so two processes can choose differently and round differently; the default,
    /// `.estimate`, chooses the same plans every time, so that a run, and a run resumed from a
    /// checkpoint in another process, repeat bit for bit.
    public var effort: FFTPlannerEffort

    public init(configuration: ModelConfiguration, threads: Int? = nil, effort: FFTPlannerEffort = .estimate) {
        self.configuration = configuration
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        self.effort = effort
    }

    var isMamba: Bool { configuration.family == .mamba }
    /// S4/S4D models keep hidden states channel-major (B, H, L), the layout their FFT
    /// convolutions take, and transpose once at the encoder and once at the decoder; Mamba
    /// models keep them token-major (B, L, H), the layout of its projections.
    var channelMajor: Bool { !isMamba }
    var modes: Int { configuration.state / 2 }

    // MARK: Names

    func encoderPrefix() -> String {
        switch (isMamba, configuration.input) {
        case (true, .tokens): "backbone.embedding."
        case (true, .features): "backbone.encoder."
        case (false, _): "encoder."
        }
    }
    func normPrefix(_ i: Int) -> String { isMamba ? "backbone.layers.\(i).norm." : "norms.\(i)." }
    func mixerPrefix(_ i: Int) -> String { isMamba ? "backbone.layers.\(i).mixer." : "s4_layers.\(i)." }
    func decoderPrefix() -> String { isMamba ? "lm_head." : "decoder." }
    static var finalNormPrefix: String { "backbone.norm_f." }

    // MARK: Initialization

    /// Seeded initial parameters: PyTorch's defaults for `nn.Linear`, `nn.Conv1d` (U(±1/√fan_in))
    /// and `nn.Embedding` (N(0, 1); Mamba: N(0, 0.02²) as its `_init_weights`), norms at
    /// weight 1 and bias 0; the mixers as their official modules (`S4DParameters` S4D-Lin,
    /// HiPPO-LegS for S4, `MambaParameters` with out_proj scaled by 1/√layers as
    /// `rescale_prenorm_residual`), D ~ N(0, 1) for S4/S4D.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func initialParameters(seed: UInt64) throws(SSMError) -> ParameterSet<T> {
        let c = configuration
        let (H, K) = (c.width, c.output.classes)
        var rng = SplitMix64(seed: seed)
        var set = ParameterSet<T>()
        func uniform(_ count: Int, fanIn: Int) -> [T] {
            let bound = 1 / Double(fanIn).squareRoot()
            return (0 ..< count).map { _ in T(Double.random(in: -bound ..< bound, using: &rng)) }
        }
        func normal(_ count: Int, _ deviation: Double) -> [T] {
            (0 ..< count).map { _ in T(rng.nextStandardNormalPair().0 * deviation) }
        }
        switch c.input {
        case let .tokens(v): set.add(encoderPrefix() + "weight", shape: [v, H], values: normal(v * H, isMamba ? 0.02 : 1))
        case let .features(f):
            set.add(encoderPrefix() + "weight", shape: [H, f], values: uniform(H * f, fanIn: f))
            set.add(encoderPrefix() + "bias", shape: [H], values: uniform(H, fanIn: f))
        }
        for i in 0 ..< c.layers {
            let layerSeed = rng.next()
            if isMamba {
                set.add(normPrefix(i) + "weight", shape: [H], values: [T](repeating: 1, count: H))
                let mc = try c.mamba
                var p = MambaParameters<T>(configuration: mc, seed: layerSeed)
                p["out_proj.weight"] = p["out_proj.weight"].map { $0 / T(Double(c.layers).squareRoot()) }
                for (name, shape) in mc.parameterShapes {
                    set.add(mixerPrefix(i) + name, shape: shape, group: ["A_log", "D"].contains(name) ? .ssm : .standard, values: p[name])
                }
            } else {
                try addConvolutionLayer(i, to: &set, seed: layerSeed, uniform: uniform, normal: normal)
                set.add(normPrefix(i) + "weight", shape: [H], values: [T](repeating: 1, count: H))
                set.add(normPrefix(i) + "bias", shape: [H], values: [T](repeating: 0, count: H))
            }
        }
        if isMamba { set.add(Self.finalNormPrefix + "weight", shape: [H], values: [T](repeating: 1, count: H)) }
        set.add(decoderPrefix() + "weight", shape: [K, H], values: uniform(K * H, fanIn: H))
        // Mamba's LM head is nn.Linear(d_model, vocab, bias=False).
        if !isMamba { set.add(decoderPrefix() + "bias", shape: [K], values: uniform(K, fanIn: H)) }
        return set
    }

    private func addConvolutionLayer(_ i: Int, to set: inout ParameterSet<T>, seed: UInt64,
                                     uniform: (Int, Int) -> [T], normal: (Int, Double) -> [T]) throws(SSMError) {
        let (H, N2, prefix) = (configuration.width, modes, mixerPrefix(i))
        func complexNormal(_ count: Int) -> [T] { normal(2 * count, 0.5.squareRoot()) }
        switch configuration.family {
        case .s4d:
            let k = try S4DParameters<T>(channels: H, state: configuration.state, initialization: .lin, seed: seed)
            set.add(prefix + "kernel.log_dt", shape: [H], group: .ssm, values: k.logDt)
            set.add(prefix + "kernel.C", shape: [H, N2, 2], values: interleaved(k.c))
            set.add(prefix + "kernel.log_A_real", shape: [H, N2], group: .ssm, values: k.logAReal)
            set.add(prefix + "kernel.A_imag", shape: [H, N2], group: .ssm, values: k.aImag)
        case .s4:
            var rng = SplitMix64(seed: seed)
            let legs = try S4LegSInitialization<T>(channels: H, state: configuration.state, rng: &rng)
            // One SSM per channel (S = H), each starting from the same LegS form.
            let S = H
            set.add(prefix + "kernel.inv_dt", shape: [H, 1], group: .ssm, values: legs.invDt)
            set.add(prefix + "kernel.A_real", shape: [S, N2], group: .ssm, values: (0 ..< S * N2).map { legs.aReal[$0 % N2] })
            set.add(prefix + "kernel.A_imag", shape: [S, N2], group: .ssm, values: (0 ..< S * N2).map { legs.aImag[$0 % N2] })
            set.add(prefix + "kernel.B", shape: [S, N2, 2], group: .ssm, values: interleaved((0 ..< S * N2).map { legs.b[$0 % N2] }))
            set.add(prefix + "kernel.P", shape: [1, S, N2, 2], group: .ssm, values: interleaved((0 ..< S * N2).map { legs.p[$0 % N2] }))
            set.add(prefix + "kernel.C", shape: [1, H, N2, 2], values: complexNormal(H * N2))
        case .mamba: preconditionFailure("Mamba layers are not convolution layers")
        }
        set.add(prefix + "D", shape: [H], values: normal(H, 1))
        set.add(prefix + "output_linear.0.weight", shape: [2 * H, H, 1], values: uniform(2 * H * H, H))
        set.add(prefix + "output_linear.0.bias", shape: [2 * H], values: uniform(2 * H, H))
    }

    /// Throws unless `parameters` has exactly this model's names and shapes, all finite.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func check(_ parameters: ParameterSet<T>) throws(SSMError) {
        let expected = try initialParameters(seed: 0)
        for name in expected.names {
            guard let shape = parameters.shapes[name] else {
                throw SSMError.missing(argument: name, expected: "shape \(expected.shapes[name]!)")
            }
            if shape != expected.shapes[name]! { throw SSMError.shape(argument: name, expected: "\(expected.shapes[name]!)", actual: shape) }
            if parameters[name].contains(where: { !$0.isFinite }) { throw SSMError.value(argument: name, expected: "finite values") }
        }
        if let extra = parameters.names.first(where: { expected.shapes[$0] == nil }) {
            throw SSMError.unexpected(argument: extra, expected: "a \(configuration.family.rawValue) model has no such parameter")
        }
    }

    // MARK: Mixers

    func s4dParameters(_ p: ParameterSet<T>, _ prefix: String) -> S4DLayer<T>.Parameters {
        .init(logDt: p[prefix + "kernel.log_dt"], c: complexArray(p[prefix + "kernel.C"]), logAReal: p[prefix + "kernel.log_A_real"],
              aImag: p[prefix + "kernel.A_imag"], d: p[prefix + "D"], weight: p[prefix + "output_linear.0.weight"],
              bias: p[prefix + "output_linear.0.bias"])
    }

    func s4Parameters(_ p: ParameterSet<T>, _ prefix: String) -> S4Layer<T>.Parameters {
        .init(invDt: p[prefix + "kernel.inv_dt"], aReal: p[prefix + "kernel.A_real"], aImag: p[prefix + "kernel.A_imag"],
              b: complexArray(p[prefix + "kernel.B"]), p: complexArray(p[prefix + "kernel.P"]), cTilde: complexArray(p[prefix + "kernel.C"]),
              d: p[prefix + "D"], weight: p[prefix + "output_linear.0.weight"], bias: p[prefix + "output_linear.0.bias"])
    }

    var s4dLayer: S4DLayer<T> { get throws(SSMError) { try S4DLayer<T>(channels: configuration.width, modes: modes, threads: threads, effort: effort) } }
    var s4Layer: S4Layer<T> {
        get throws(SSMError) { try S4Layer<T>(channels: configuration.width, ssms: configuration.width, modes: modes, threads: threads, effort: effort) }
    }
    var mambaBlock: MambaBlock<T> { get throws(SSMError) { try MambaBlock<T>(configuration: try configuration.mamba, threads: threads) } }

    enum MixerActivations: Sendable {
        case s4d(S4DLayer<T>.Activations)
        case s4(S4Layer<T>.Activations)
        case mamba(MambaBlock<T>.Activations)
    }

    /// One mixer: n → its output, both (B, H, L) for S4/S4D and (B, L, H) for Mamba.
    func mixerForward(_ i: Int, _ n: [T], batch B: Int, length L: Int, parameters p: ParameterSet<T>) throws(SSMError) -> ([T], MixerActivations) {
        let prefix = mixerPrefix(i)
        switch configuration.family {
        case .s4d:
            let (y, act) = try s4dLayer.forward(n, batch: B, length: L, parameters: s4dParameters(p, prefix))
            return (y, .s4d(act))
        case .s4:
            let (y, act) = try s4Layer.forward(n, batch: B, length: L, parameters: s4Parameters(p, prefix))
            return (y, .s4(act))
        case .mamba:
            let (y, act) = try mambaBlock.forward(n, batch: B, length: L, parameters: MambaParameters(values: p.subset(prefix)))
            return (y, .mamba(act))
        }
    }

    /// The mixer's backward: dN in the mixer's layout, accumulating its parameters' gradients into `g`.
    func mixerBackward(_ i: Int, dY: [T], _ act: MixerActivations, batch B: Int, length L: Int, parameters p: ParameterSet<T>,
                       gradients g: inout ParameterSet<T>) throws(SSMError) -> [T] {
        let prefix = mixerPrefix(i)
        switch act {
        case let .s4d(a):
            let (dU, d) = try s4dLayer.backward(dY: dY, activations: a, parameters: s4dParameters(p, prefix))
            for (name, value) in [("kernel.log_dt", d.logDt), ("kernel.C", interleaved(d.c)), ("kernel.log_A_real", d.logAReal),
                                  ("kernel.A_imag", d.aImag), ("D", d.d), ("output_linear.0.weight", d.weight), ("output_linear.0.bias", d.bias)] {
                g.accumulate(prefix + name, value)
            }
            return dU
        case let .s4(a):
            let (dU, d) = try s4Layer.backward(dY: dY, activations: a, parameters: s4Parameters(p, prefix))
            for (name, value) in [("kernel.inv_dt", d.invDt), ("kernel.A_real", d.aReal), ("kernel.A_imag", d.aImag), ("kernel.B", interleaved(d.b)),
                                  ("kernel.P", interleaved(d.p)), ("kernel.C", interleaved(d.cTilde)), ("D", d.d),
                                  ("output_linear.0.weight", d.weight), ("output_linear.0.bias", d.bias)] {
                g.accumulate(prefix + name, value)
            }
            return dU
        case let .mamba(a):
            let (dN, d) = try mambaBlock.backward(dOut: dY, activations: a, parameters: MambaParameters(values: p.subset(prefix)))
            for (name, value) in d.values { g.accumulate(prefix + name, value) }
            return dN
        }
    }

    /// The recurrent mode of an S4/S4D mixer: the same layer with the convolution replaced by
    /// its recurrence, stepped over the whole sequence by ``StepEngine``.
    func mixerRecurrent(_ i: Int, _ n: [T], batch B: Int, length L: Int, parameters p: ParameterSet<T>) throws(SSMError) -> [T] {
        let (H, prefix) = (configuration.width, mixerPrefix(i))
        let u = n
        let engine: StepEngine<T>
        let weight = p[prefix + "output_linear.0.weight"], bias = p[prefix + "output_linear.0.bias"]
        switch configuration.family {
        case .s4d:
            let q = s4dParameters(p, prefix)
            engine = StepEngine(try S4DRecurrence<T>(kernel: try s4dLayer.kernel, logDt: q.logDt, c: q.c, logAReal: q.logAReal,
                                                     aImag: q.aImag, d: q.d), threads: threads)
        case .s4:
            engine = StepEngine(try s4Layer.recurrence(length: L, parameters: s4Parameters(p, prefix)), as: T.self, threads: threads)
        case .mamba: preconditionFailure("Mamba's scan mode is already recurrent")
        }
        var state = try engine.makeState(batch: B)
        var z = [T](repeating: 0, count: B * H * L)
        try engine.run(&state, u: u, y: &z, length: L)
        return GatedConvolution<T>(channels: H, threads: threads, effort: effort).output(z, weight: weight, bias: bias, batch: B, length: L).y
    }
}

