import SSMKit

/// The buffers of one pass of a ``SequenceModel`` over one (B, L), made once and reused by
/// later passes of that shape. Legend: R = B·L · H width · F features · K classes · n layers.
final class Pass<T: SSMScalar> {
    let batch: Int, length: Int
    private var owned: [UnsafeMutableRawPointer] = []
    /// The batch's tokens (B·L), as given.
    var tokens: [Int] = []
    /// Features (R, F), the encoder's input.
    let features: UnsafeMutablePointer<T>
    /// The residual stream before each block and after the last: (n + 1) × (R·H), stream layout.
    let streams: UnsafeMutablePointer<T>
    /// Each block's norm output (the mixer's input), n × (R·H), stream layout; and its copy in
    /// the mixer's layout for blocks whose mixer takes the other one.
    let normalized: UnsafeMutablePointer<T>, mixerInputs: UnsafeMutablePointer<T>
    /// Each block's norm statistics, n × R (LayerNorm's mean and σ⁻¹; RMSNorm's ρ⁻¹).
    let means: UnsafeMutablePointer<Double>, inverses: UnsafeMutablePointer<Double>
    /// Dropout masks n × (R·H), when the model has dropout; whether this pass drew them.
    let masks: UnsafeMutablePointer<T>?
    var masked = false
    /// The mixers' own activations.
    var mixerActivations: [AnyObject] = []
    /// The last stream after norm_f (token-major), and its ρ⁻¹ (R).
    let finalNormed: UnsafeMutablePointer<T>, finalInverse: UnsafeMutablePointer<Double>
    /// The decoder's input (rows, H), the model's outputs (rows, K) and room for their gradient.
    let decoderInput: UnsafeMutablePointer<T>, outputs: UnsafeMutablePointer<T>, dOutputs: UnsafeMutablePointer<T>
    /// Scratch of R·H each (two in the mixer's layout, three in the stream's) and the norms'.
    let scratch: [UnsafeMutablePointer<T>]
    let normScratch: UnsafeMutablePointer<Double>
    let sequence: Int, outputRows: Int, outputCount: Int

    init(model: SequenceModel<T>, batch B: Int, length L: Int) throws(SSMError) {
        (batch, length) = (B, L)
        let (H, n, R) = (model.width, model.layers, B * L)
        sequence = R * H
        outputRows = model.outputRows(batch: B, length: L)
        outputCount = outputRows * model.output.classes
        var allocations: [UnsafeMutableRawPointer] = []
        func make<S>(_ count: Int, _: S.Type = S.self) -> UnsafeMutablePointer<S> {
            let p = UnsafeMutablePointer<S>.allocate(capacity: max(count, 1))
            (p as UnsafeMutablePointer<S>).withMemoryRebound(to: UInt8.self, capacity: MemoryLayout<S>.stride * max(count, 1)) {
                $0.update(repeating: 0, count: MemoryLayout<S>.stride * max(count, 1))
            }
            allocations.append(UnsafeMutableRawPointer(p))
            return p
        }
        if case let .features(F) = model.input { features = make(R * F) } else { features = make(0) }
        streams = make((n + 1) * sequence)
        normalized = make(n * sequence)
        mixerInputs = make(n * sequence)
        means = make(n * R, Double.self)
        inverses = make(n * R, Double.self)
        masks = model.dropout > 0 ? make(n * sequence) : nil
        finalNormed = make(sequence)
        finalInverse = make(R, Double.self)
        decoderInput = make(outputRows * H)
        outputs = make(outputRows * model.output.classes)
        dOutputs = make(outputRows * model.output.classes)
        let count = R * H
        var buffers: [UnsafeMutablePointer<T>] = []
        for _ in 0 ..< 5 { buffers.append(make(count)) }
        scratch = buffers
        normScratch = make(max(LayerNorm.channelMajorScratchCount(batch: B, channels: H, length: L, threads: model.threads),
                               LayerNorm.rowScratchCount(rows: R, channels: H, threads: model.threads)), Double.self)
        owned = allocations
        for mixer in model.mixers { mixerActivations.append(try makeActivations(mixer, batch: B, length: L)) }
    }

    deinit { for p in owned { p.deallocate() } }

    func stream(_ i: Int) -> UnsafeMutablePointer<T> { streams + i * sequence }
    func normalized(_ i: Int) -> UnsafeMutablePointer<T> { normalized + i * sequence }
    func mixerInput(_ i: Int) -> UnsafeMutablePointer<T> { mixerInputs + i * sequence }
    func mask(_ i: Int) -> UnsafeMutablePointer<T>? { masks.map { $0 + i * sequence } }
}

private func makeActivations<M: SequenceMixer>(_ mixer: M, batch: Int, length: Int) throws(SSMError) -> AnyObject {
    try mixer.makeActivations(batch: batch, length: length)
}

/// acc[c] += Σ_(s, t) x[s·segmentStride + c·channelStride + t] for c in 0 ..< channels, each
/// channel's values added one at a time in the order (s, t) of the plain double loop, so the bits
/// are those of that loop; eight channels' chains run interleaved so that their additions overlap.
private func addOrderedSums<T: FFTScalar>(_ x: UnsafePointer<T>, into acc: UnsafeMutablePointer<T>, channels: Int, channelStride: Int,
                                          segments: Int, segmentStride: Int, count: Int) {
    var c = 0
    while c + 8 <= channels {
        var (s0, s1, s2, s3) = (acc[c], acc[c + 1], acc[c + 2], acc[c + 3])
        var (s4, s5, s6, s7) = (acc[c + 4], acc[c + 5], acc[c + 6], acc[c + 7])
        for segment in 0 ..< segments {
            let r = x + segment * segmentStride + c * channelStride
            for t in 0 ..< count {
                s0 += r[t]; s1 += r[channelStride + t]; s2 += r[2 * channelStride + t]; s3 += r[3 * channelStride + t]
                s4 += r[4 * channelStride + t]; s5 += r[5 * channelStride + t]; s6 += r[6 * channelStride + t]; s7 += r[7 * channelStride + t]
            }
        }
        (acc[c], acc[c + 1], acc[c + 2], acc[c + 3]) = (s0, s1, s2, s3)
        (acc[c + 4], acc[c + 5], acc[c + 6], acc[c + 7]) = (s4, s5, s6, s7)
        c += 8
    }
    for c in c ..< channels {
        var sum = acc[c]
        for segment in 0 ..< segments { let r = x + segment * segmentStride + c * channelStride; for t in 0 ..< count { sum += r[t] } }
        acc[c] = sum
    }
}

private func mixerForward<M: SequenceMixer>(_ mixer: M, _ u: UnsafeBufferPointer<M.Scalar>, _ p: ParameterView<M.Scalar>, _ act: AnyObject,
                                            _ y: UnsafeMutableBufferPointer<M.Scalar>) throws(SSMError) {
    try mixer.forward(u, parameters: p, activations: unsafeDowncast(act, to: M.Activations.self), into: y)
}

/// y = residual + the mixer's y; true when the mixer added the residual itself.
private func mixerForward<M: SequenceMixer>(_ mixer: M, _ u: UnsafeBufferPointer<M.Scalar>, _ p: ParameterView<M.Scalar>, _ act: AnyObject,
                                            adding residual: UnsafePointer<M.Scalar>, _ y: UnsafeMutableBufferPointer<M.Scalar>) throws(SSMError) -> Bool {
    try mixer.forward(u, parameters: p, activations: unsafeDowncast(act, to: M.Activations.self), adding: residual, into: y)
}

private func mixerBackward<M: SequenceMixer>(_ mixer: M, _ dY: UnsafeBufferPointer<M.Scalar>, _ u: UnsafeBufferPointer<M.Scalar>,
                                             _ p: ParameterView<M.Scalar>, _ act: AnyObject, _ dU: UnsafeMutableBufferPointer<M.Scalar>,
                                             _ g: GradientView<M.Scalar>) throws(SSMError) {
    try mixer.backward(dY, input: u, parameters: p, activations: unsafeDowncast(act, to: M.Activations.self), dInput: dU, gradients: g)
}

extension SequenceModel {
    /// What ``forward(_:parameters:dropoutSeed:)`` keeps for
    /// ``backward(dOutputs:activations:parameters:gradients:)``: the pass's buffers. While a
    /// caller holds it, no other pass reuses them.
    public struct Activations: @unchecked Sendable {
        public let batch: Int, length: Int
        let pass: Pass<T>

        /// The outputs of the pass, (R, K), in place: valid while these activations are held.
        public var outputs: UnsafeBufferPointer<T> {
            UnsafeBufferPointer(start: pass.outputs, count: pass.outputCount)
        }

        /// A buffer of the outputs' shape for their gradient, which
        /// ``SequenceModel/backward(activations:parameters:gradients:)`` reads (the loss writes
        /// it: `Loss.evaluate(_:targets:rows:classes:into:)`).
        public var dOutputs: UnsafeMutableBufferPointer<T> {
            UnsafeMutableBufferPointer(start: pass.dOutputs, count: pass.outputCount)
        }
    }

    /// Output rows of a batch: B·L per token, B pooled.
    public func outputRows(batch B: Int, length L: Int) -> Int {
        if case .perToken = output { B * L } else { B }
    }

    /// The model's outputs (R, K) — R = B·L per token or B pooled — and its activations.
    /// Dropout is applied when the model has it and `dropoutSeed` is given (training).
    /// - Throws: `SSMError` for inputs of the wrong shape, tokens out of range, non-finite
    ///   features, or parameters of another layout.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ batch: SequenceBatch, parameters p: ParameterSet<T>,
                        dropoutSeed: UInt64? = nil) throws(SSMError) -> (outputs: [T], activations: Activations) {
        let act = try forwardInPlace(batch, parameters: p, dropoutSeed: dropoutSeed)
        return (Array(act.outputs), act)
    }

    /// ``forward(_:parameters:dropoutSeed:)`` without copying the outputs out: read them from
    /// ``Activations/outputs``. With ``Activations/dOutputs``, `Loss.evaluate(_:targets:rows:classes:into:)`
    /// and ``backward(activations:parameters:gradients:)``, a training step that allocates
    /// nothing once the buffers of its (B, L) exist.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forwardInPlace(_ batch: SequenceBatch, parameters p: ParameterSet<T>,
                               dropoutSeed: UInt64? = nil) throws(SSMError) -> Activations {
        let pass = try run(batch, parameters: p, dropoutSeed: dropoutSeed, recurrent: false)
        return Activations(batch: batch.batch, length: batch.length, pass: pass)
    }

    /// The same model in recurrent mode: every mixer run by its step mode
    /// (``SequenceMixer/forwardRecurrent(_:parameters:batch:length:into:)``). Agrees with
    /// ``forward(_:parameters:dropoutSeed:)`` to rounding.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forwardRecurrent(_ batch: SequenceBatch, parameters p: ParameterSet<T>) throws(SSMError) -> [T] {
        let pass = try run(batch, parameters: p, dropoutSeed: nil, recurrent: true)
        return Array(UnsafeBufferPointer(start: pass.outputs, count: pass.outputRows * output.classes))
    }

    /// Throws unless `p` has this model's layout.
    func checkLayout(_ p: ParameterSet<T>, _ name: String) throws(SSMError) {
        guard p.names == layout.names, p.scalarCount == layout.scalarCount else {
            throw SSMError.value(argument: name, expected: "parameters of this model's layout (see SequenceModel.layout)")
        }
    }

    private func pass(batch B: Int, length L: Int) throws(SSMError) -> Pass<T> {
        guard B >= 1, L >= 1 else { throw SSMError.value(argument: "batch, length", expected: "positive sizes, got (\(B), \(L))") }
        return try passes.take(PassShape(batch: B, length: L)) { () throws(SSMError) in try Pass(model: self, batch: B, length: L) }
    }

    /// Transposes R·H values between the stream's layout and the other one.
    private func relayout(_ x: UnsafePointer<T>, from: SequenceLayout, into y: UnsafeMutablePointer<T>, batch B: Int, length L: Int) {
        let (rows, cols) = from == .tokenMajor ? (L, width) : (width, L)
        BLAS.transpose(x, into: y, batch: B, rows: rows, cols: cols, threads: threads)
    }

    private func encode(_ batch: SequenceBatch, _ p: UnsafePointer<T>, _ s: Pass<T>, into x: UnsafeMutablePointer<T>) throws(SSMError) {
        let (B, L, H) = (batch.batch, batch.length, width)
        switch input {
        case let .tokens(V):
            guard let tokens = batch.tokens, tokens.count == B * L else {
                throw SSMError.shape(argument: "tokens", expected: "(B, L) = (\(B), \(L))", actual: [batch.tokens?.count ?? 0])
            }
            if let bad = tokens.first(where: { $0 < 0 || $0 >= V }) {
                throw SSMError.value(argument: "tokens", expected: "values in 0 ..< \(V), got \(bad)")
            }
            s.tokens = tokens
            let w = p + encoderRange.weight.lowerBound
            if stream == .tokenMajor {
                for (r, token) in tokens.enumerated() { (x + r * H).update(from: w + token * H, count: H) }
            } else {
                for (r, token) in tokens.enumerated() {
                    let (b, t) = r.quotientAndRemainder(dividingBy: L)
                    for h in 0 ..< H { x[(b * H + h) * L + t] = w[token * H + h] }
                }
            }
        case let .features(F):
            guard let features = batch.features, features.count == B * L * F else {
                throw SSMError.shape(argument: "features", expected: "(B, L, F) = (\(B), \(L), \(F))", actual: [batch.features?.count ?? 0])
            }
            guard features.allSatisfy(\.isFinite) else { throw SSMError.value(argument: "features", expected: "finite values") }
            for (i, v) in features.enumerated() { s.features[i] = T(v) }
            let (w, bias) = (p + encoderRange.weight.lowerBound, p + encoderRange.bias!.lowerBound)
            if stream == .tokenMajor {
                affine(s.features, weight: w, bias: bias, rows: B * L, inputs: F, outputs: H, into: x)
            } else {
                // Per sequence, x_b (H, L) = W (H, F) · f_bᵀ + b: the stream's layout directly.
                for b in 0 ..< B {
                    let xb = x + b * H * L
                    for h in 0 ..< H { (xb + h * L).update(repeating: bias[h], count: L) }
                    T.gemm(transposeA: false, transposeB: true, m: H, n: L, k: F, alpha: 1, a: w, lda: F, b: s.features + b * L * F,
                           ldb: F, beta: 1, c: xb, ldc: L)
                }
            }
        }
    }

    /// y (R, O) = x (R, I) · Wᵀ + b.
    private func affine(_ x: UnsafePointer<T>, weight w: UnsafePointer<T>, bias b: UnsafePointer<T>?, rows R: Int, inputs I: Int, outputs O: Int,
                        into y: UnsafeMutablePointer<T>) {
        BLAS.matmul(x, w, transposeB: true, m: R, n: O, k: I, into: y, threads: threads)
        if let b { for r in 0 ..< R { for o in 0 ..< O { y[r * O + o] += b[o] } } }
    }

    private func norm(_ i: Int, _ x: UnsafePointer<T>, _ p: UnsafePointer<T>, _ s: Pass<T>, into y: UnsafeMutablePointer<T>) {
        let (B, L, H) = (s.batch, s.length, width)
        let r = blocks[i].norm
        let (mean, inverse) = (s.means + i * B * L, s.inverses + i * B * L)
        switch (backbone, stream) {
        case (.s4, .channelMajor):
            LayerNorm.forwardChannelMajor(x, weight: p + r.lowerBound, bias: p + r.lowerBound + H, y: y, mean: mean, inverseDeviation: inverse,
                                          batch: B, channels: H, length: L, threads: threads)
        case (.s4, .tokenMajor):
            LayerNorm.forward(x, weight: p + r.lowerBound, bias: p + r.lowerBound + H, y: y, mean: mean, inverseDeviation: inverse, rows: B * L,
                              channels: H, threads: threads)
        case (.mamba, _):
            RMSNorm.forward(x, weight: p + r.lowerBound, y: y, inverseRMS: inverse, rows: B * L, channels: H)
        }
    }

    private func normBackward(_ i: Int, dY: UnsafePointer<T>, x: UnsafePointer<T>, _ p: UnsafePointer<T>, _ g: UnsafeMutablePointer<T>,
                              _ s: Pass<T>, dX: UnsafeMutablePointer<T>) {
        let (B, L, H) = (s.batch, s.length, width)
        let r = blocks[i].norm
        let (mean, inverse) = (s.means + i * B * L, s.inverses + i * B * L)
        switch (backbone, stream) {
        case (.s4, .channelMajor):
            LayerNorm.backwardChannelMajor(dY: dY, x: x, weight: p + r.lowerBound, mean: mean, inverseDeviation: inverse, batch: B, channels: H,
                                           length: L, dX: dX, dWeight: g + r.lowerBound, dBias: g + r.lowerBound + H, scratch: s.normScratch,
                                           threads: threads)
        case (.s4, .tokenMajor):
            LayerNorm.backward(dY: dY, x: x, weight: p + r.lowerBound, mean: mean, inverseDeviation: inverse, rows: B * L, channels: H, dX: dX,
                               dWeight: g + r.lowerBound, dBias: g + r.lowerBound + H, scratch: s.normScratch, threads: threads)
        case (.mamba, _):
            RMSNorm.backward(dY: dY, x: x, weight: p + r.lowerBound, inverseRMS: inverse, rows: B * L, channels: H, dX: dX,
                             dWeight: g + r.lowerBound)
        }
    }

    private func run(_ batch: SequenceBatch, parameters: ParameterSet<T>, dropoutSeed: UInt64?, recurrent: Bool) throws(SSMError) -> Pass<T> {
        try checkLayout(parameters, "parameters")
        let (B, L, H) = (batch.batch, batch.length, width)
        let s = try pass(batch: B, length: L)
        let n = s.sequence
        try parameters.storage.withUnsafeBufferPointer { (pb: UnsafeBufferPointer<T>) throws(SSMError) in
            let p = pb.baseAddress!
            try encode(batch, p, s, into: s.stream(0))
            s.masked = dropoutSeed != nil && dropout > 0
            for i in mixers.indices {
                let mixer = mixers[i]
                let (x, nx) = (s.stream(i), s.normalized(i))
                norm(i, x, p, s, into: nx)
                let mismatch = mixer.layout != stream
                if mismatch { relayout(nx, from: stream, into: s.mixerInput(i), batch: B, length: L) }
                let u = UnsafeBufferPointer(start: UnsafePointer(mismatch ? s.mixerInput(i) : nx), count: n)
                let view = ParameterView(base: p + blocks[i].mixerOffset, layout: blocks[i].mixer)
                if !recurrent, !mismatch, !s.masked {
                    // xᵢ₊₁ = xᵢ + mixer(norm(xᵢ)) straight into the stream, the addition in the mixer's last pass if it can.
                    let next = UnsafeMutableBufferPointer(start: s.stream(i + 1), count: n)
                    if try !mixerForward(mixer, u, view, s.mixerActivations[i], adding: x, next) {
                        Elementwise.add(x, next.baseAddress!, into: next.baseAddress!, count: n, threads: threads)
                    }
                    continue
                }
                let y = UnsafeMutableBufferPointer(start: s.scratch[1], count: n)
                if recurrent {
                    try mixer.forwardRecurrent(u, parameters: view, batch: B, length: L, into: y)
                } else {
                    try mixerForward(mixer, u, view, s.mixerActivations[i], y)
                }
                var m = s.scratch[1]
                if mismatch {
                    relayout(s.scratch[1], from: mixer.layout, into: s.scratch[2], batch: B, length: L)
                    m = s.scratch[2]
                }
                if s.masked, let mask = s.mask(i), let dropoutSeed {
                    Dropout.fillMask(mask, count: n, probability: dropout, seed: dropoutSeed &+ UInt64(i) &* 0x9E37_79B9)
                    for j in 0 ..< n { m[j] *= mask[j] }
                }
                Elementwise.add(x, m, into: s.stream(i + 1), count: n, threads: threads)
            }
            // norm_f, pooling (or token-major rows), decoder.
            var h = UnsafePointer(s.stream(layers))
            if let r = finalNormRange {
                RMSNorm.forward(h, weight: p + r.lowerBound, y: s.finalNormed, inverseRMS: s.finalInverse, rows: B * L, channels: H)
                h = UnsafePointer(s.finalNormed)
            }
            // (b, t, c) of h, in the stream's layout (norm_f exists only for token-major streams).
            let (tokenStride, channelStride) = stream == .tokenMajor ? (H, 1) : (1, L)
            func at(_ b: Int, _ t: Int, _ c: Int) -> Int { b * L * H + t * tokenStride + c * channelStride }
            switch output {
            case .perToken:
                if stream == .tokenMajor { s.decoderInput.update(from: h, count: n) } else {
                    relayout(h, from: .channelMajor, into: s.decoderInput, batch: B, length: L)
                }
            case let .pooled(pooling, _):
                for b in 0 ..< B {
                    let row = s.decoderInput + b * H
                    switch pooling {
                    case .mean:
                        // Σ_t in order for each c, along the stream's contiguous axis.
                        row.update(repeating: 0, count: H)
                        if stream == .tokenMajor {
                            for t in 0 ..< L { for c in 0 ..< H { row[c] += h[at(b, t, c)] } }
                        } else {
                            addOrderedSums(h + b * H * L, into: row, channels: H, channelStride: L, segments: 1, segmentStride: 0, count: L)
                        }
                        for c in 0 ..< H { row[c] /= T(L) }
                    case .last: for c in 0 ..< H { row[c] = h[at(b, L - 1, c)] }
                    }
                }
            }
            affine(s.decoderInput, weight: p + decoderRange.weight.lowerBound, bias: decoderRange.bias.map { p + $0.lowerBound },
                   rows: s.outputRows, inputs: H, outputs: output.classes, into: s.outputs)
        }
        return s
    }

    /// Adds into `gradients` (this model's layout) the gradients of Σ dOutputs ⊙ outputs, in the
    /// reverse order of forward.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(dOutputs: [T], activations act: Activations, parameters: ParameterSet<T>,
                         gradients: inout ParameterSet<T>) throws(SSMError) {
        try checkLayout(parameters, "parameters")
        try checkLayout(gradients, "gradients")
        let s = act.pass
        let (B, L, K) = (s.batch, s.length, output.classes)
        let rows = s.outputRows, n = s.sequence
        if dOutputs.count != rows * K { throw SSMError.shape(argument: "d_outputs", expected: "(\(rows), \(K))", actual: [dOutputs.count]) }
        guard s.mixerActivations.count == layers else { throw SSMError.value(argument: "activations", expected: "the activations of forward") }
        try parameters.storage.withUnsafeBufferPointer { (pb: UnsafeBufferPointer<T>) throws(SSMError) in
            try gradients.storage.withUnsafeMutableBufferPointer { (gb: inout UnsafeMutableBufferPointer<T>) throws(SSMError) in
                try dOutputs.withUnsafeBufferPointer { (dOut: UnsafeBufferPointer<T>) throws(SSMError) in
                    try backward(dOut.baseAddress!, s, pb.baseAddress!, gb.baseAddress!, batch: B, length: L, rows: rows, count: n, classes: K)
                }
            }
        }
    }

    /// ``backward(dOutputs:activations:parameters:gradients:)`` with the gradient of the
    /// outputs read from ``Activations/dOutputs``.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(activations act: Activations, parameters: ParameterSet<T>, gradients: inout ParameterSet<T>) throws(SSMError) {
        try checkLayout(parameters, "parameters")
        try checkLayout(gradients, "gradients")
        let s = act.pass
        guard s.mixerActivations.count == layers else { throw SSMError.value(argument: "activations", expected: "the activations of forward") }
        try parameters.storage.withUnsafeBufferPointer { (pb: UnsafeBufferPointer<T>) throws(SSMError) in
            try gradients.storage.withUnsafeMutableBufferPointer { (gb: inout UnsafeMutableBufferPointer<T>) throws(SSMError) in
                try backward(s.dOutputs, s, pb.baseAddress!, gb.baseAddress!, batch: s.batch, length: s.length, rows: s.outputRows,
                             count: s.sequence, classes: output.classes)
            }
        }
    }

    private func backward(_ dOut: UnsafePointer<T>, _ s: Pass<T>, _ p: UnsafePointer<T>, _ g: UnsafeMutablePointer<T>, batch B: Int, length L: Int,
                          rows: Int, count n: Int, classes K: Int) throws(SSMError) {
        let H = width
        // Decoder: dIn = dOut · W; dW += dOutᵀ · in; db += Σ dOut.
        let dDecoderInput = s.scratch[0]
        let w = decoderRange.weight.lowerBound
        BLAS.matmul(dOut, p + w, m: rows, n: H, k: K, into: dDecoderInput, threads: threads)
        BLAS.matmul(dOut, transposeA: true, s.decoderInput, m: K, n: H, k: rows, into: g + w, accumulate: true, threads: threads)
        if let bias = decoderRange.bias { for r in 0 ..< rows { for k in 0 ..< K { g[bias.lowerBound + k] += dOut[r * K + k] } } }
        // Pooling back to (R, H) in the stream's layout, then norm_f: dX is the gradient of the
        // stream after block i.
        let (tokenStride, channelStride) = stream == .tokenMajor ? (H, 1) : (1, L)
        func at(_ b: Int, _ t: Int, _ c: Int) -> Int { b * L * H + t * tokenStride + c * channelStride }
        let dX = s.scratch[2]
        let dH = finalNormRange == nil ? dX : s.scratch[1]
        switch output {
        case .perToken:
            if stream == .tokenMajor { dH.update(from: dDecoderInput, count: n) } else {
                relayout(dDecoderInput, from: .tokenMajor, into: dH, batch: B, length: L)
            }
        case let .pooled(pooling, _):
            dH.update(repeating: 0, count: n)
            for b in 0 ..< B {
                switch pooling {
                case .mean:
                    for c in 0 ..< H {
                        let v = dDecoderInput[b * H + c] / T(L)
                        if stream == .tokenMajor { for t in 0 ..< L { dH[at(b, t, c)] = v } } else { (dH + at(b, 0, c)).update(repeating: v, count: L) }
                    }
                case .last: for c in 0 ..< H { dH[at(b, L - 1, c)] = dDecoderInput[b * H + c] }
                }
            }
        }
        if let r = finalNormRange {
            dX.update(repeating: 0, count: n)
            RMSNorm.backward(dY: dH, x: s.stream(layers), weight: p + r.lowerBound, inverseRMS: s.finalInverse, rows: B * L, channels: H, dX: dX,
                             dWeight: g + r.lowerBound)
        }
        // Blocks in reverse: xᵢ₊₁ = xᵢ + dropout(mixer(norm(xᵢ))).
        let (dM, dMixerY, dMixerU) = (s.scratch[0], s.scratch[1], s.scratch[3])
        for i in mixers.indices.reversed() {
            let mixer = mixers[i]
            let mismatch = mixer.layout != stream
            // The mixer's dY is dX itself unless dropout or a relayout stands between them (dX
            // is not written until the norm's backward, after the mixer's).
            var dY = UnsafePointer(dX)
            if s.masked, let mask = s.mask(i) {
                Elementwise.multiply(dX, mask, into: dM, count: n, threads: threads)
                dY = UnsafePointer(dM)
            }
            if mismatch {
                relayout(dY, from: stream, into: dMixerY, batch: B, length: L)
                dY = UnsafePointer(dMixerY)
            }
            dMixerU.update(repeating: 0, count: n)
            let u = UnsafePointer(mismatch ? s.mixerInput(i) : s.normalized(i))
            let view = ParameterView(base: p + blocks[i].mixerOffset, layout: blocks[i].mixer)
            let gradients = GradientView(base: g + blocks[i].mixerOffset, layout: blocks[i].mixer)
            try mixerBackward(mixer, UnsafeBufferPointer(start: dY, count: n), UnsafeBufferPointer(start: u, count: n), view, s.mixerActivations[i],
                              UnsafeMutableBufferPointer(start: dMixerU, count: n), gradients)
            var dN = UnsafePointer(dMixerU)
            if mismatch {
                relayout(dMixerU, from: mixer.layout, into: s.scratch[4], batch: B, length: L)
                dN = UnsafePointer(s.scratch[4])
            }
            normBackward(i, dY: dN, x: s.stream(i), p, g, s, dX: dX)
        }
        // Encoder, from dX in the stream's layout.
        let w0 = encoderRange.weight.lowerBound
        switch input {
        case .tokens:
            for (r, token) in s.tokens.enumerated() {
                let (b, t) = r.quotientAndRemainder(dividingBy: L)
                for c in 0 ..< H { g[w0 + token * H + c] += dX[at(b, t, c)] }
            }
        case let .features(F):
            if stream == .tokenMajor {
                BLAS.matmul(dX, transposeA: true, s.features, m: H, n: F, k: B * L, into: g + w0, accumulate: true, threads: threads)
            } else {
                // dW (H, F) += Σ_b dX_b (H, L) · f_b (L, F).
                for b in 0 ..< B {
                    T.gemm(transposeA: false, transposeB: false, m: H, n: F, k: L, alpha: 1, a: dX + b * H * L, lda: L,
                           b: s.features + b * L * F, ldb: F, beta: 1, c: g + w0, ldc: F)
                }
            }
            let bias = encoderRange.bias!.lowerBound
            // Σ_(b, t) in order for each c, along the stream's contiguous axis.
            if stream == .tokenMajor {
                for b in 0 ..< B { for t in 0 ..< L { for c in 0 ..< H { g[bias + c] += dX[at(b, t, c)] } } }
            } else {
                addOrderedSums(dX, into: g + bias, channels: H, channelStride: L, segments: B, segmentStride: H * L, count: L)
            }
        }
    }
}
