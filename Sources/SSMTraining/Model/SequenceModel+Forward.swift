import SSMKit

extension SequenceModel {
    /// What ``forward(_:parameters:dropoutSeed:)`` keeps for ``backward(dOutputs:activations:parameters:gradients:)``.
    public struct Activations: Sendable {
        public let batch: Int, length: Int
        let tokens: [Int]?, features: [T]?
        /// Per block: its input xᵢ, the norm's statistics, nᵢ = normᵢ(xᵢ), the mixer's own
        /// activations and the dropout mask (nil without dropout).
        let blockInputs: [[T]], normStatistics: [LayerNorm.Statistics], normalized: [[T]]
        let mixers: [MixerActivations], masks: [[T]?]
        /// x after the last block, norm_f's statistics (Mamba), the decoder's input (B·L or B, H).
        let last: [T], finalInverseRMS: [Double], decoderInput: [T]
    }

    /// Output rows of a batch: B·L per token, B pooled.
    public func outputRows(batch B: Int, length L: Int) -> Int {
        if case .perToken = configuration.output { B * L } else { B }
    }

    func encode(_ batch: SequenceBatch, _ p: ParameterSet<T>) throws(SSMError) -> (x: [T], features: [T]?) {
        let (B, L, H) = (batch.batch, batch.length, configuration.width)
        guard B >= 1, L >= 1 else { throw SSMError.value(argument: "batch, length", expected: "positive sizes, got (\(B), \(L))") }
        switch configuration.input {
        case let .tokens(V):
            guard let tokens = batch.tokens, tokens.count == B * L else {
                throw SSMError.shape(argument: "tokens", expected: "(B, L) = (\(B), \(L))", actual: [batch.tokens?.count ?? 0])
            }
            return (try Embedding.forward(tokens, weight: p[encoderPrefix() + "weight"], vocabulary: V, channels: H), nil)
        case let .features(F):
            guard let features = batch.features, features.count == B * L * F else {
                throw SSMError.shape(argument: "features", expected: "(B, L, F) = (\(B), \(L), \(F))", actual: [batch.features?.count ?? 0])
            }
            guard features.allSatisfy(\.isFinite) else { throw SSMError.value(argument: "features", expected: "finite values") }
            let f = features.map { T($0) }
            return (Linear.forward(f, weight: p[encoderPrefix() + "weight"], bias: p[encoderPrefix() + "bias"], rows: B * L, inputs: F, outputs: H), f)
        }
    }

    func norm(_ i: Int, _ x: [T], batch B: Int, length L: Int, _ p: ParameterSet<T>) -> ([T], LayerNorm.Statistics) {
        let (H, prefix, R) = (configuration.width, normPrefix(i), B * L)
        if isMamba {
            let (y, inverse) = RMSNorm.forward(x, weight: p[prefix + "weight"], rows: R, channels: H)
            return (y, LayerNorm.Statistics(mean: [], inverseDeviation: inverse))
        }
        return LayerNorm.forwardChannelMajor(x, weight: p[prefix + "weight"], bias: p[prefix + "bias"], batch: B, channels: H, length: L,
                                             threads: threads)
    }

    /// The model's outputs (R, K) — R = B·L per token or B pooled — and its activations.
    /// Dropout is applied when the configuration has it and `dropoutSeed` is given (training).
    /// - Throws: `SSMError` for inputs of the wrong shape, tokens out of range, non-finite features.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ batch: SequenceBatch, parameters p: ParameterSet<T>,
                        dropoutSeed: UInt64? = nil) throws(SSMError) -> (outputs: [T], activations: Activations) {
        try stack(batch, parameters: p, dropoutSeed: dropoutSeed, recurrent: false)
    }

    /// The same model in recurrent mode (S4/S4D): every convolution replaced by its
    /// recurrence. Agrees with ``forward(_:parameters:dropoutSeed:)`` to rounding.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forwardRecurrent(_ batch: SequenceBatch, parameters p: ParameterSet<T>) throws(SSMError) -> [T] {
        guard !isMamba else { throw SSMError.option(name: "model", expected: "an S4 or S4D model (Mamba's scan is its recurrence)") }
        return try stack(batch, parameters: p, dropoutSeed: nil, recurrent: true).outputs
    }

    private func stack(_ batch: SequenceBatch, parameters p: ParameterSet<T>, dropoutSeed: UInt64?,
                       recurrent: Bool) throws(SSMError) -> (outputs: [T], activations: Activations) {
        let c = configuration
        let (B, L, H, K) = (batch.batch, batch.length, c.width, c.output.classes)
        var (x, features) = try encode(batch, p)
        if channelMajor { x = BLAS.transposed(x, batch: B, rows: L, cols: H, threads: threads) }
        var inputs: [[T]] = [], statistics: [LayerNorm.Statistics] = [], normalized: [[T]] = []
        var mixers: [MixerActivations] = [], masks: [[T]?] = []
        for i in 0 ..< c.layers {
            let (n, s) = norm(i, x, batch: B, length: L, p)
            var m: [T]
            if recurrent {
                m = try mixerRecurrent(i, n, batch: B, length: L, parameters: p)
            } else {
                let (y, act) = try mixerForward(i, n, batch: B, length: L, parameters: p)
                (m, mixers) = (y, mixers + [act])
            }
            var mask: [T]? = nil
            if let dropoutSeed, c.dropout > 0 {
                mask = Dropout.mask(count: m.count, probability: c.dropout, seed: dropoutSeed &+ UInt64(i) &* 0x9E37_79B9)
                m = Dropout.forward(m, mask: mask!)
            }
            inputs.append(x)
            statistics.append(s)
            normalized.append(n)
            masks.append(mask)
            for j in x.indices { x[j] += m[j] }
        }
        var h = channelMajor ? BLAS.transposed(x, batch: B, rows: H, cols: L, threads: threads) : x, finalInverse: [Double] = []
        if isMamba { (h, finalInverse) = RMSNorm.forward(x, weight: p[Self.finalNormPrefix + "weight"], rows: B * L, channels: H) }
        let decoderInput: [T]
        switch c.output {
        case .perToken: decoderInput = h
        case let .pooled(pooling, _): decoderInput = pooling.forward(h, batch: B, length: L, channels: H)
        }
        let rows = outputRows(batch: B, length: L)
        let outputs = Linear.forward(decoderInput, weight: p[decoderPrefix() + "weight"], bias: isMamba ? nil : p[decoderPrefix() + "bias"],
                                     rows: rows, inputs: H, outputs: K)
        return (outputs, Activations(batch: B, length: L, tokens: batch.tokens, features: features, blockInputs: inputs,
                                     normStatistics: statistics, normalized: normalized, mixers: mixers, masks: masks,
                                     last: x, finalInverseRMS: finalInverse, decoderInput: decoderInput))
    }

    /// Accumulates into `gradients` (same layout as the parameters) the gradients of
    /// Σ dOutputs ⊙ outputs, in the reverse order of forward.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(dOutputs: [T], activations act: Activations, parameters p: ParameterSet<T>,
                         gradients g: inout ParameterSet<T>) throws(SSMError) {
        let c = configuration
        let (B, L, H, K) = (act.batch, act.length, c.width, c.output.classes)
        let rows = outputRows(batch: B, length: L)
        if dOutputs.count != rows * K { throw SSMError.shape(argument: "d_outputs", expected: "(\(rows), \(K))", actual: [dOutputs.count]) }
        precondition(g.hasLayout(of: p), "SequenceModel.backward: gradients of another layout")
        precondition(act.mixers.count == c.layers, "SequenceModel.backward: activations of a recurrent pass")
        // Decoder, pooling, norm_f.
        var dDecoderInput: [T]? = [T](repeating: 0, count: act.decoderInput.count)
        var dW = g[decoderPrefix() + "weight"], dBias: [T]? = isMamba ? nil : g[decoderPrefix() + "bias"]
        Linear.backward(dY: dOutputs, x: act.decoderInput, weight: p[decoderPrefix() + "weight"], rows: rows, inputs: H, outputs: K,
                        dX: &dDecoderInput, dWeight: &dW, dBias: &dBias)
        g[decoderPrefix() + "weight"] = dW
        if let dBias { g[decoderPrefix() + "bias"] = dBias }
        var dH: [T]
        switch c.output {
        case .perToken: dH = dDecoderInput!
        case let .pooled(pooling, _):
            dH = [T](repeating: 0, count: B * L * H)
            pooling.backward(dY: dDecoderInput!, batch: B, length: L, channels: H, dX: &dH)
        }
        var dX: [T]
        if channelMajor {
            dX = BLAS.transposed(dH, batch: B, rows: L, cols: H, threads: threads)
        } else {
            dX = [T](repeating: 0, count: B * L * H)
            var dNormWeight = g[Self.finalNormPrefix + "weight"]
            RMSNorm.backward(dY: dH, x: act.last, weight: p[Self.finalNormPrefix + "weight"], inverseRMS: act.finalInverseRMS,
                             rows: B * L, channels: H, dX: &dX, dWeight: &dNormWeight)
            g[Self.finalNormPrefix + "weight"] = dNormWeight
        }
        // Blocks in reverse: xᵢ₊₁ = xᵢ + dropout(mixer(norm(xᵢ))).
        for i in (0 ..< c.layers).reversed() {
            var dM = dX
            if let mask = act.masks[i] {
                dM = [T](repeating: 0, count: dX.count)
                Dropout.backward(dY: dX, mask: mask, dX: &dM)
            }
            let dN = try mixerBackward(i, dY: dM, act.mixers[i], batch: B, length: L, parameters: p, gradients: &g)
            let prefix = normPrefix(i)
            var dWeight = g[prefix + "weight"]
            if isMamba {
                RMSNorm.backward(dY: dN, x: act.blockInputs[i], weight: p[prefix + "weight"], inverseRMS: act.normStatistics[i].inverseDeviation,
                                 rows: B * L, channels: H, dX: &dX, dWeight: &dWeight)
            } else {
                var dNormBias = g[prefix + "bias"]
                LayerNorm.backwardChannelMajor(dY: dN, x: act.blockInputs[i], weight: p[prefix + "weight"], statistics: act.normStatistics[i],
                                               batch: B, channels: H, length: L, dX: &dX, dWeight: &dWeight, dBias: &dNormBias,
                                               threads: threads)
                g[prefix + "bias"] = dNormBias
            }
            g[prefix + "weight"] = dWeight
        }
        // Encoder.
        if channelMajor { dX = BLAS.transposed(dX, batch: B, rows: H, cols: L, threads: threads) }
        let prefix = encoderPrefix()
        var dEncoder = g[prefix + "weight"]
        switch c.input {
        case .tokens:
            Embedding.backward(dY: dX, tokens: act.tokens!, channels: H, dWeight: &dEncoder)
        case let .features(F):
            var none: [T]? = nil, dEncoderBias: [T]? = g[prefix + "bias"]
            Linear.backward(dY: dX, x: act.features!, weight: p[prefix + "weight"], rows: B * L, inputs: F, outputs: H,
                            dX: &none, dWeight: &dEncoder, dBias: &dEncoderBias)
            g[prefix + "bias"] = dEncoderBias!
        }
        g[prefix + "weight"] = dEncoder
    }
}
