import SSMKit

extension MambaMixer {
    /// The inference state of B sequences (the official `Mamba.step`'s): conv (B, E, K), the
    /// last K inputs of the convolution (most recent last), and ssm (B, E, N), the scan's
    /// state; zero when new. It also holds one token's scratch, so a step allocates nothing.
    public struct State: ConvolutionScanState {
        public let batch: Int
        public var conv: [T]
        public var ssm: [T]
        /// Scratch of one token: in_proj's output (B, 2E), u and z (B, E), x_proj's (B, S),
        /// Δ and y (B, E), A (E, N).
        var xz, u, z, xDbl, dt, y, a: [T]

        public func zero(batch: Int) -> State { State(configuration, batch: batch) }

        /// The sizes of the block it belongs to.
        let configuration: MambaConfiguration

        init(_ c: MambaConfiguration, batch B: Int) {
            let (E, N, K, S) = (c.innerWidth, c.state, c.convWidth, c.dtRank + 2 * c.state)
            configuration = c
            batch = B
            conv = [T](repeating: 0, count: B * E * K)
            ssm = [T](repeating: 0, count: B * E * N)
            xz = [T](repeating: 0, count: B * 2 * E)
            (u, z, dt, y) = ([T](repeating: 0, count: B * E), [T](repeating: 0, count: B * E), [T](repeating: 0, count: B * E),
                             [T](repeating: 0, count: B * E))
            xDbl = [T](repeating: 0, count: B * S)
            a = [T](repeating: 0, count: E * N)
        }
    }

    /// A state from saved values: conv (B, E, K) and ssm (B, E, N).
    /// - Throws: `SSMError` when the counts do not match this mixer's sizes.
    public func makeState(batch B: Int, conv: [T], ssm: [T]) throws(SSMError) -> State {
        try checkState(batch: B, conv: conv.count, ssm: ssm.count)
        var s = State(configuration, batch: B)
        (s.conv, s.ssm) = (conv, ssm)
        return s
    }

    public func makeState(batch: Int, length: Int, parameters p: ParameterView<T>) throws(SSMError) -> State {
        guard batch >= 1 else { throw SSMError.value(argument: "batch", expected: "a positive count, got \(batch)") }
        return State(configuration, batch: batch)
    }

    /// bfloat16 copies of the four projection matrices (row-major, the shapes of their
    /// parameters), for a step that reads half the bytes: the decoding of a model stored in
    /// BF16 with Float arithmetic.
    public struct BFloat16Projections: @unchecked Sendable {
        public let inProj, xProj, dtProj, outProj: UnsafePointer<UInt16>
        public init(inProj: UnsafePointer<UInt16>, xProj: UnsafePointer<UInt16>, dtProj: UnsafePointer<UInt16>, outProj: UnsafePointer<UInt16>) {
            (self.inProj, self.xProj, self.dtProj, self.outProj) = (inProj, xProj, dtProj, outProj)
        }
    }

    /// One token per sequence, h (B, M) → out (B, M), advancing `state`.
    public func step(_ state: inout State, _ h: UnsafeBufferPointer<T>, parameters p: ParameterView<T>,
                     into out: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        try step(&state, h, parameters: p, bfloat16: nil, into: out)
    }

    /// ``step(_:_:parameters:into:)`` reading the projections from `bfloat16` copies when
    /// given (T must be Float, and the batch 1): the other parameters come from `p`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func step(_ state: inout State, _ h: UnsafeBufferPointer<T>, parameters p: ParameterView<T>, bfloat16: BFloat16Projections?,
                     into out: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        if bfloat16 != nil, T.self != Float.self || state.batch != 1 {
            throw SSMError.option(name: "bfloat16", expected: "Float arithmetic and batch 1 for bfloat16 projections")
        }
        let c = configuration
        let (M, E, N, K, R) = (c.modelWidth, c.innerWidth, c.state, c.convWidth, c.dtRank)
        let S = R + 2 * N
        let B = state.batch
        guard h.count == B * M else { throw SSMError.shape(argument: "hidden_states", expected: "(B, M) = (\(B), \(M))", actual: [h.count]) }
        guard out.count == B * M else { throw SSMError.shape(argument: "out", expected: "(B, M) = (\(B), \(M))", actual: [out.count]) }
        let update = try SelectiveStateUpdate<T>(batch: B, channels: E, state: N, rowStride: S)
        let finite = withStepBuffers(&state) { s in
            product(h.baseAddress!, p[slots.inProj].baseAddress!, bfloat16?.inProj, rows: B, outputs: 2 * E, inputs: M, into: s.xz)
            if let bias = slots.inProjBias { for b in 0 ..< B { for j in 0 ..< 2 * E { s.xz[b * 2 * E + j] += p[bias][j] } } }
            // Roll the conv state, convolve, SiLU.
            let w = p[slots.convWeight], convBias = slots.convBias.map { p[$0] }
            for b in 0 ..< B {
                for e in 0 ..< E {
                    let row = b * E + e
                    let window = s.conv + row * K
                    for j in 0 ..< K - 1 { window[j] = window[j + 1] }
                    window[K - 1] = s.xz[b * 2 * E + e]
                    var sum = convBias?[e] ?? 0
                    for j in 0 ..< K { sum += window[j] * w[e * K + j] }
                    s.u[row] = silu(sum)
                    s.z[row] = s.xz[b * 2 * E + E + e]
                }
            }
            product(s.u, p[slots.xProj].baseAddress!, bfloat16?.xProj, rows: B, outputs: S, inputs: E, into: s.xDbl)
            product(s.xDbl, p[slots.dtProjWeight].baseAddress!, bfloat16?.dtProj, rows: B, outputs: E, inputs: R, inputStride: S, into: s.dt)
            let aLog = p[slots.aLog]
            T.vectorExp(aLog.baseAddress!, s.a, aLog.count)
            for i in 0 ..< aLog.count { s.a[i] = -s.a[i] }
            let finite = update(state: s.ssm, SelectiveScanOperands(
                u: s.u, delta: s.dt, a: s.a, b: s.xDbl + R, c: s.xDbl + R + N, d: p[slots.d].baseAddress!, z: s.z,
                deltaBias: p[slots.dtProjBias].baseAddress!), out: s.y, threads: threads)
            product(s.y, p[slots.outProj].baseAddress!, bfloat16?.outProj, rows: B, outputs: M, inputs: E, into: out.baseAddress!)
            if let bias = slots.outProjBias { for b in 0 ..< B { for j in 0 ..< M { out[b * M + j] += p[bias][j] } } }
            return finite
        }
        if !finite {
            try checkFinite(h.baseAddress!, h.count, "hidden_states")
            throw SSMError.value(argument: "state", expected: "finite values after the step (the parameters or the state hold a NaN or infinity)")
        }
    }

    /// out (B, outputs) = x (B, inputs; rows `inputStride` apart) · Wᵀ, W (outputs, inputs):
    /// for one sequence a matrix-vector product that reads each weight once (decoding streams
    /// the weights from memory), for several a GEMM; both on the mixer's threads.
    func product(_ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ w16: UnsafePointer<UInt16>?, rows B: Int, outputs: Int, inputs: Int,
                 inputStride: Int? = nil, into out: UnsafeMutablePointer<T>) {
        if let w16 {
            // Checked by the caller: T is Float and B is 1.
            BLAS.matvec(bfloat16: w16, rows: outputs, cols: inputs, UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                        into: UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self), threads: threads)
        } else {
            linearRows(x, w, rows: B, outputs: outputs, inputs: inputs, inputStride: inputStride, into: out, threads: threads)
        }
    }

    /// Scan mode from `state`: B sequences of L tokens h (B, L, M) → out (B, L, M), leaving in
    /// `state` the state after the last token, as L steps would (prefill for step mode, or one
    /// chunk of a longer sequence).
    ///
    /// `activations` (of this (B, L), e.g. ``makeInferenceActivations(batch:length:)``, which
    /// mixers of one configuration may share) are the pass's buffers; without them the mixer
    /// uses its own, made once per (B, L).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func prefill(_ h: UnsafeBufferPointer<T>, length L: Int, parameters p: ParameterView<T>, state: inout State,
                        activations: Activations? = nil, into out: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        let B = state.batch
        let (E, K) = (configuration.innerWidth, configuration.convWidth)
        guard L >= 1 else { throw SSMError.value(argument: "length", expected: "at least 1 token, got \(L)") }
        try checkSequence(h.count, "hidden_states", batch: B, length: L)
        try checkSequence(out.count, "out", batch: B, length: L)
        if let activations, activations.batch != B || activations.length != L {
            throw SSMError.value(argument: "activations", expected: "buffers of (B, L) = (\(B), \(L)), got (\(activations.batch), \(activations.length))")
        }
        let act: Activations
        if let activations { act = activations } else { act = try scratch(batch: B, length: L) }
        // The conv's left context: the state's last K − 1 inputs.
        for row in 0 ..< B * E {
            for j in 0 ..< K - 1 { act.context.base[row * (K - 1) + j] = state.conv[row * K + 1 + j] }
        }
        try state.ssm.withUnsafeMutableBufferPointer { (ssm) throws(SSMError) in
            // Each row reads its initial state before it writes its last one: the same memory serves.
            try run(h.baseAddress!, parameters: p, activations: act, ssmState: UnsafePointer(ssm.baseAddress!), into: out.baseAddress!,
                    lastState: ssm.baseAddress!)
        }
        // The scan has checked its own output; out_proj's is checked here (a pass over B·L·M
        // values, where checking the parameters would read every weight again).
        if !allFinite(UnsafePointer(out.baseAddress!), out.count) {
            try checkFiniteParameters(p)
            throw SSMError.value(argument: "out", expected: "finite values (the block overflowed)")
        }
        // The conv state after the last token: its last K inputs, reaching into the context
        // when L < K.
        for row in 0 ..< B * E {
            for j in 0 ..< K {
                let s = L - K + j
                state.conv[row * K + j] = s >= 0 ? act.x.base[row * L + s] : act.context.base[row * (K - 1) + (K - 1 + s)]
            }
        }
    }
}

/// The step's buffers as pointers (the arrays of a uniquely held state: no copy).
struct StepBuffers<T> {
    let conv, ssm, xz, u, z, xDbl, dt, y, a: UnsafeMutablePointer<T>
}

func withStepBuffers<T: SSMScalar, R>(_ s: inout MambaMixer<T>.State, _ body: (StepBuffers<T>) -> R) -> R {
    s.conv.withUnsafeMutableBufferPointer { conv in
    s.ssm.withUnsafeMutableBufferPointer { ssm in
    s.xz.withUnsafeMutableBufferPointer { xz in
    s.u.withUnsafeMutableBufferPointer { u in
    s.z.withUnsafeMutableBufferPointer { z in
    s.xDbl.withUnsafeMutableBufferPointer { xDbl in
    s.dt.withUnsafeMutableBufferPointer { dt in
    s.y.withUnsafeMutableBufferPointer { y in
    s.a.withUnsafeMutableBufferPointer { a in
        body(StepBuffers(conv: conv.baseAddress!, ssm: ssm.baseAddress!, xz: xz.baseAddress!, u: u.baseAddress!, z: z.baseAddress!,
                         xDbl: xDbl.baseAddress!, dt: dt.baseAddress!, y: y.baseAddress!, a: a.baseAddress!))
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
