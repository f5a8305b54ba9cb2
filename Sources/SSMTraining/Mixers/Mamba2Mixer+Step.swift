import SSMKit

extension Mamba2Mixer {
    /// The inference state of B sequences (the official `Mamba2.step`'s, and transformers'
    /// cache): conv (B, C, K), the last K inputs of the conv, most recent last; ssm
    /// (B, H, P, N). Zero when new. It holds one token's scratch, so a step allocates nothing.
    public struct State: ConvolutionScanState {
        public let batch: Int
        public var conv: [T]
        public var ssm: [T]
        /// Scratch: in_proj's output (B, W), the conv's output (B, C), y, y ⊙ silu(z), n (B, E),
        /// 1/RMS (B, G), A (H).
        var zx, xbc, y, gated, normed, inverseRMS, a: [T]
        let configuration: Mamba2Configuration

        init(_ c: Mamba2Configuration, batch B: Int) {
            (configuration, batch) = (c, B)
            conv = [T](repeating: 0, count: B * c.convChannels * c.convWidth)
            ssm = [T](repeating: 0, count: B * c.heads * c.headDimension * c.state)
            zx = [T](repeating: 0, count: B * c.projectionWidth)
            xbc = [T](repeating: 0, count: B * c.convChannels)
            (y, gated, normed) = ([T](repeating: 0, count: B * c.innerWidth), [T](repeating: 0, count: B * c.innerWidth),
                                  [T](repeating: 0, count: B * c.innerWidth))
            inverseRMS = [T](repeating: 0, count: B * c.groups)
            a = [T](repeating: 0, count: c.heads)
        }

        public func zero(batch: Int) -> State { State(configuration, batch: batch) }
    }

    public func makeState(batch: Int, length: Int, parameters p: ParameterView<T>) throws(SSMError) -> State {
        guard batch >= 1 else { throw SSMError.value(argument: "batch", expected: "a positive count, got \(batch)") }
        return State(configuration, batch: batch)
    }

    /// A state from saved values: conv (B, C, K) and ssm (B, H, P, N).
    /// - Throws: `SSMError` when the counts do not match this mixer's sizes.
    public func makeState(batch B: Int, conv: [T], ssm: [T]) throws(SSMError) -> State {
        try checkState(batch: B, conv: conv.count, ssm: ssm.count)
        var s = State(configuration, batch: B)
        (s.conv, s.ssm) = (conv, ssm)
        return s
    }

    /// One token per sequence, h (B, M) → out (B, M), advancing `state`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func step(_ state: inout State, _ h: UnsafeBufferPointer<T>, parameters p: ParameterView<T>,
                     into out: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        let c = configuration
        let (M, E, H, G, N, K) = (c.modelWidth, c.innerWidth, c.heads, c.groups, c.state, c.convWidth)
        let (C, W) = (c.convChannels, c.projectionWidth)
        let B = state.batch
        guard h.count == B * M else { throw SSMError.shape(argument: "hidden_states", expected: "(B, M) = (\(B), \(M))", actual: [h.count]) }
        guard out.count == B * M else { throw SSMError.shape(argument: "out", expected: "(B, M) = (\(B), \(M))", actual: [out.count]) }
        let scan = try SSDScan<T>(shape: SSDShape(batch: B, length: 1, heads: H, headDimension: c.headDimension, groups: G, state: N),
                                  chunkLength: 1, timeStep: c.timeStep, threads: threads)
        let threads = self.threads
        let finite = state.withBuffers { s in
            linearRows(h.baseAddress!, p[slots.inProj].baseAddress!, rows: B, outputs: W, inputs: M, into: s.zx, threads: threads)
            if let bias = slots.inProjBias { addBias(p[bias].baseAddress!, to: s.zx, rows: B, width: W) }
            // Roll the conv state, convolve, SiLU.
            let w = p[slots.convWeight], convBias = slots.convBias.map { p[$0] }
            for b in 0 ..< B {
                for ch in 0 ..< C {
                    let window = s.conv + (b * C + ch) * K
                    for j in 0 ..< K - 1 { window[j] = window[j + 1] }
                    window[K - 1] = s.zx[b * W + E + ch]
                    var sum = convBias?[ch] ?? 0
                    for j in 0 ..< K { sum += window[j] * w[ch * K + j] }
                    s.xbc[b * C + ch] = silu(sum)
                }
            }
            let aLog = p[slots.aLog]
            T.vectorExp(aLog.baseAddress!, s.a, H)
            for i in 0 ..< H { s.a[i] = -s.a[i] }
            let operands = SSDOperands(x: UnsafePointer(s.xbc), xStride: C, dt: UnsafePointer(s.zx + 2 * E + 2 * G * N), dtStride: W,
                                       a: UnsafePointer(s.a), b: UnsafePointer(s.xbc + E), bStride: C, c: UnsafePointer(s.xbc + E + G * N),
                                       cStride: C, d: p[slots.d].baseAddress!, dtBias: p[slots.dtBias].baseAddress!)
            let finite = scan.step(states: s.ssm, operands, out: s.y, outStride: E)
            let norm = GatedNorm(y: s.y, z: s.zx, zStride: W, weight: p[slots.normWeight].baseAddress!, gated: s.gated, normed: s.normed,
                                 inverseRMS: s.inverseRMS, width: E, groups: G, epsilon: T(c.normEpsilon))
            for b in 0 ..< B { norm.forward(b) }
            linearRows(s.normed, p[slots.outProj].baseAddress!, rows: B, outputs: M, inputs: E, into: out.baseAddress!, threads: threads)
            if let bias = slots.outProjBias { addBias(p[bias].baseAddress!, to: out.baseAddress!, rows: B, width: M) }
            return finite
        }
        if !finite || !allFinite(UnsafePointer(out.baseAddress!), out.count) {
            try checkFinite(h.baseAddress!, h.count, "hidden_states")
            throw SSMError.value(argument: "state", expected: "finite values after the step (the parameters or the state hold a NaN or infinity)")
        }
    }

    /// Scan mode from `state`: h (B, L, M) → out (B, L, M), leaving in `state` the state after
    /// the last token, as L steps would (prefill for step mode, or one chunk of a longer text).
    /// `activations` (of this (B, L)) are the pass's buffers; without them the mixer uses its own.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func prefill(_ h: UnsafeBufferPointer<T>, length L: Int, parameters p: ParameterView<T>, state: inout State,
                        activations: Activations? = nil, into out: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        let B = state.batch
        let (C, K) = (configuration.convChannels, configuration.convWidth)
        let (E, W) = (configuration.innerWidth, configuration.projectionWidth)
        guard L >= 1 else { throw SSMError.value(argument: "length", expected: "at least 1 token, got \(L)") }
        try checkSequence(h.count, "hidden_states", batch: B, length: L)
        try checkSequence(out.count, "out", batch: B, length: L)
        if let activations, activations.batch != B || activations.length != L {
            throw SSMError.value(argument: "activations", expected: "buffers of (B, L) = (\(B), \(L)), got (\(activations.batch), \(activations.length))")
        }
        let act: Activations
        if let activations { act = activations } else { act = try scratch(batch: B, length: L) }
        // The conv's left context (B, K − 1, C): the state's last K − 1 inputs.
        for b in 0 ..< B {
            for ch in 0 ..< C {
                for j in 0 ..< K - 1 { act.context.base[(b * (K - 1) + j) * C + ch] = state.conv[(b * C + ch) * K + 1 + j] }
            }
        }
        try state.ssm.withUnsafeMutableBufferPointer { (ssm) throws(SSMError) in
            // The scan reads the initial states before it writes the final ones.
            try run(h.baseAddress!, parameters: p, activations: act, ssmState: UnsafePointer(ssm.baseAddress!), into: out.baseAddress!,
                    finalState: ssm.baseAddress!)
        }
        if !allFinite(UnsafePointer(out.baseAddress!), out.count) {
            try checkFiniteParameters(p)
            throw SSMError.value(argument: "out", expected: "finite values (the block overflowed)")
        }
        // The conv state after the last token: its last K inputs, reaching into the context when L < K.
        for b in 0 ..< B {
            for j in 0 ..< K {
                let s = L - K + j
                for ch in 0 ..< C {
                    state.conv[(b * C + ch) * K + j] = s >= 0 ? act.zx.base[(b * L + s) * W + E + ch] : act.context.base[(b * (K - 1) + (K - 1 + s)) * C + ch]
                }
            }
        }
    }
}

extension Mamba2Mixer.State {
    /// The state's arrays as pointers (uniquely held: no copy).
    mutating func withBuffers<R>(_ body: (Mamba2StepBuffers<T>) -> R) -> R {
        conv.withUnsafeMutableBufferPointer { conv in
        ssm.withUnsafeMutableBufferPointer { ssm in
        zx.withUnsafeMutableBufferPointer { zx in
        xbc.withUnsafeMutableBufferPointer { xbc in
        y.withUnsafeMutableBufferPointer { y in
        gated.withUnsafeMutableBufferPointer { gated in
        normed.withUnsafeMutableBufferPointer { normed in
        inverseRMS.withUnsafeMutableBufferPointer { inverseRMS in
        a.withUnsafeMutableBufferPointer { a in
            body(Mamba2StepBuffers(conv: conv.baseAddress!, ssm: ssm.baseAddress!, zx: zx.baseAddress!, xbc: xbc.baseAddress!,
                                   y: y.baseAddress!, gated: gated.baseAddress!, normed: normed.baseAddress!,
                                   inverseRMS: inverseRMS.baseAddress!, a: a.baseAddress!))
        }
        }
        }
        }
        }
        }
        }
        }
        }
    }
}

struct Mamba2StepBuffers<T> {
    let conv, ssm, zx, xbc, y, gated, normed, inverseRMS, a: UnsafeMutablePointer<T>
}

/// out (B, outputs) = x (B, inputs; rows `inputStride` apart) · Wᵀ, W (outputs, inputs): for
/// one sequence a matrix-vector product that reads each weight once (decoding streams the
/// weights from memory), for several a GEMM.
func linearRows<T: FFTScalar>(_ x: UnsafePointer<T>, _ w: UnsafePointer<T>, rows B: Int, outputs: Int, inputs: Int,
                              inputStride: Int? = nil, into out: UnsafeMutablePointer<T>, threads: Int) {
    if B == 1 {
        BLAS.matvec(w, rows: outputs, cols: inputs, x, into: out, threads: threads)
    } else {
        BLAS.matmul(x, w, transposeB: true, m: B, n: outputs, k: inputs, into: out, lda: inputStride, threads: threads)
    }
}
