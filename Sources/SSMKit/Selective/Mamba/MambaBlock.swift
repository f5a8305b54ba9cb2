/// The Mamba block of the official `mamba_simple.py`, in scan mode (whole sequences, with a
/// backward pass) and in step mode (one token at a time through a conv state and an SSM state):
///
///     x, z  = split(in_proj(h))                          h: (B, L, M) → x, z: (B, E, L)
///     u     = silu(causal depthwise conv1d(x) + bias)    kernel K, per channel
///     dt_r, B, C = split(x_proj(u))                      (R, N, N) per token
///     dt    = dt_proj.weight · dt_r                      its bias enters the scan as delta_bias
///     y     = selective_scan(u, dt, A = −exp(A_log), B, C, D, z, delta_bias, softplus)
///     out   = out_proj(y)                                (B, L, M)
///
/// Linear layers run through BLAS GEMM; the scan is ``SelectiveScan``; step mode uses
/// ``SelectiveStateUpdate``. Like the official module, A_log, D and dt_proj.bias are used in
/// the block's precision (the official code casts them to float32; the fixtures use float64).
public struct MambaBlock<T: FFTScalar>: Sendable {
    public let configuration: MambaConfiguration
    /// Worker threads of the scan.
    public var threads: Int

    public init(configuration: MambaConfiguration, threads: Int? = nil) throws(SSMError) {
        if let threads, threads < 1 { throw SSMError.value(argument: "threads", expected: "a positive count, got \(threads)") }
        self.configuration = configuration
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
    }

    /// The inference state of `batch` sequences: conv (B, E, K), the last K inputs of the
    /// convolution (most recent last), and ssm (B, E, N), the scan's state. Zero when new.
    public struct State: Sendable, Equatable {
        public var batch: Int
        public var conv: [T]
        public var ssm: [T]
    }

    public func makeState(batch: Int) throws(SSMError) -> State {
        guard batch >= 1 else { throw SSMError.value(argument: "batch", expected: "a positive count, got \(batch)") }
        let (E, N, K) = (configuration.innerWidth, configuration.state, configuration.convWidth)
        return State(batch: batch, conv: [T](repeating: 0, count: batch * E * K), ssm: [T](repeating: 0, count: batch * E * N))
    }

    /// What scan mode keeps for the backward pass.
    public struct Activations: Sendable {
        public let batch: Int
        public let length: Int
        /// h: (B·L, M)
        let hidden: [T]
        /// The conv input x: (B, E, L), and the conv's left context per channel (B, E, K − 1).
        let x: [T]
        let context: [T]
        /// conv output before SiLU, and u after: (B, E, L).
        let preActivation: [T]
        /// u transposed: (B·L, E).
        let uRows: [T]
        /// dt_r: (B·L, R).
        let dtLow: [T]
        /// The scan's inputs.
        let scan: SelectiveScanInputs<T>
        /// The scan's output transposed: (B·L, E).
        let yRows: [T]
    }

    /// Scan mode from a zero state: hidden (B, L, M) → out (B, L, M), with the activations
    /// for ``backward(dOut:activations:parameters:)``.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ hidden: [T], batch: Int, length: Int,
                        parameters: MambaParameters<T>) throws(SSMError) -> (out: [T], activations: Activations) {
        let r = try run(hidden, batch: batch, length: length, parameters: parameters, from: nil)
        return (r.out, r.activations)
    }

    /// Scan mode that starts from `state` (zero when nil) and returns the state after the
    /// last token: prefill for step mode, or one chunk of a longer sequence.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func prefill(_ hidden: [T], batch: Int, length: Int, parameters: MambaParameters<T>,
                        from state: State? = nil) throws(SSMError) -> (out: [T], state: State) {
        let r = try run(hidden, batch: batch, length: length, parameters: parameters, from: state)
        return (r.out, r.state)
    }

    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    func run(_ hidden: [T], batch B: Int, length L: Int, parameters p: MambaParameters<T>,
             from initial: State?) throws(SSMError) -> (out: [T], activations: Activations, state: State) {
        let c = configuration
        let (M, E, N, K, R) = (c.modelWidth, c.innerWidth, c.state, c.convWidth, c.dtRank)
        try p.check(c)
        guard B >= 1, L >= 1 else { throw SSMError.value(argument: "hidden_states", expected: "a batch and length of at least 1, got (\(B), \(L))") }
        try checkValues(hidden, "hidden_states", B * L * M, "(B, L, M) = (\(B), \(L), \(M))")
        if let initial {
            guard initial.batch == B, initial.conv.count == B * E * K, initial.ssm.count == B * E * N else {
                throw SSMError.shape(argument: "state", expected: "a state for batch \(B) with conv (B, E, K) = (\(B), \(E), \(K)) and ssm (B, E, N) = (\(B), \(E), \(N))",
                                     actual: [initial.batch, initial.conv.count, initial.ssm.count])
            }
        }
        let rows = B * L
        // in_proj: xz (B·L, 2E), then x and z channels-first (B, E, L).
        var xz = [T](repeating: 0, count: rows * 2 * E)
        BLAS.matmul(hidden, p["in_proj.weight"], transposeB: true, m: rows, n: 2 * E, k: M, into: &xz)
        if let bias = p.values["in_proj.bias"] { addRowVector(bias, to: &xz, rows: rows) }
        var x = [T](repeating: 0, count: B * E * L), z = x
        for b in 0 ..< B {
            for t in 0 ..< L {
                let src = (b * L + t) * 2 * E
                for e in 0 ..< E {
                    x[(b * E + e) * L + t] = xz[src + e]
                    z[(b * E + e) * L + t] = xz[src + E + e]
                }
            }
        }
        // The causal depthwise conv: its left context is the state's last K − 1 inputs.
        var context = [T](repeating: 0, count: B * E * (K - 1))
        if let initial {
            for row in 0 ..< B * E {
                for j in 0 ..< K - 1 { context[row * (K - 1) + j] = initial.conv[row * K + 1 + j] }
            }
        }
        let pre = causalConv(x, context: context, weight: p["conv1d.weight"], bias: p.values["conv1d.bias"], rows: B * E, length: L)
        let u = pre.map { silu($0) }
        // x_proj → dt_r, B, C; dt_proj.
        let uRows = BLAS.transposed(u, batch: B, rows: E, cols: L)
        var xDbl = [T](repeating: 0, count: rows * (R + 2 * N))
        BLAS.matmul(uRows, p["x_proj.weight"], transposeB: true, m: rows, n: R + 2 * N, k: E, into: &xDbl)
        var dtLow = [T](repeating: 0, count: rows * R)
        var bm = [T](repeating: 0, count: B * N * L), cm = bm
        for b in 0 ..< B {
            for t in 0 ..< L {
                let src = (b * L + t) * (R + 2 * N)
                for j in 0 ..< R { dtLow[(b * L + t) * R + j] = xDbl[src + j] }
                for n in 0 ..< N {
                    bm[(b * N + n) * L + t] = xDbl[src + R + n]
                    cm[(b * N + n) * L + t] = xDbl[src + R + N + n]
                }
            }
        }
        var dtRows = [T](repeating: 0, count: rows * E)
        BLAS.matmul(dtLow, p["dt_proj.weight"], transposeB: true, m: rows, n: E, k: R, into: &dtRows)
        let scanInputs = SelectiveScanInputs(
            u: u, delta: BLAS.transposed(dtRows, batch: B, rows: L, cols: E), a: stateMatrix(p), b: bm, c: cm,
            d: p["D"], z: z, deltaBias: p["dt_proj.bias"], initialState: initial?.ssm)
        let shape = try SelectiveScanShape(batch: B, channels: E, state: N, length: L)
        let scan = try SelectiveScan<T>(shape: shape, deltaSoftplus: true, threads: threads)
        let (y, last) = try scan.forward(scanInputs)
        // out_proj.
        let yRows = BLAS.transposed(y, batch: B, rows: E, cols: L)
        var out = [T](repeating: 0, count: rows * M)
        BLAS.matmul(yRows, p["out_proj.weight"], transposeB: true, m: rows, n: M, k: E, into: &out)
        if let bias = p.values["out_proj.bias"] { addRowVector(bias, to: &out, rows: rows) }
        // The state after the last token: the conv's last K inputs, and the scan's last state.
        var state = State(batch: B, conv: [T](repeating: 0, count: B * E * K), ssm: last)
        for row in 0 ..< B * E {
            for j in 0 ..< K {
                let s = L - K + j  // position in the sequence; negative reaches into the context
                state.conv[row * K + j] = s >= 0 ? x[row * L + s] : (s >= -(K - 1) ? context[row * (K - 1) + (K - 1 + s)] : 0)
            }
        }
        let activations = Activations(batch: B, length: L, hidden: hidden, x: x, context: context, preActivation: pre,
                                      uRows: uRows, dtLow: dtLow, scan: scanInputs, yRows: yRows)
        return (out, activations, state)
    }

    /// Step mode: one token per sequence, hidden (B, M) → out (B, M), advancing `state`
    /// (the official `Mamba.step`).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func step(_ state: inout State, _ hidden: [T], parameters p: MambaParameters<T>) throws(SSMError) -> [T] {
        let c = configuration
        let (M, E, N, K, R) = (c.modelWidth, c.innerWidth, c.state, c.convWidth, c.dtRank)
        try p.check(c)
        let B = state.batch
        try checkValues(hidden, "hidden_states", B * M, "(B, M) = (\(B), \(M))")
        var xz = [T](repeating: 0, count: B * 2 * E)
        BLAS.matmul(hidden, p["in_proj.weight"], transposeB: true, m: B, n: 2 * E, k: M, into: &xz)
        if let bias = p.values["in_proj.bias"] { addRowVector(bias, to: &xz, rows: B) }
        // Roll the conv state and convolve.
        let w = p["conv1d.weight"], convBias = p.values["conv1d.bias"]
        var u = [T](repeating: 0, count: B * E), z = u
        for b in 0 ..< B {
            for e in 0 ..< E {
                let row = b * E + e
                for j in 0 ..< K - 1 { state.conv[row * K + j] = state.conv[row * K + j + 1] }
                state.conv[row * K + K - 1] = xz[b * 2 * E + e]
                var sum = convBias?[e] ?? 0
                for j in 0 ..< K { sum += state.conv[row * K + j] * w[e * K + j] }
                u[row] = silu(sum)
                z[row] = xz[b * 2 * E + E + e]
            }
        }
        var xDbl = [T](repeating: 0, count: B * (R + 2 * N))
        BLAS.matmul(u, p["x_proj.weight"], transposeB: true, m: B, n: R + 2 * N, k: E, into: &xDbl)
        var dtLow = [T](repeating: 0, count: B * R), bm = [T](repeating: 0, count: B * N), cm = bm
        for b in 0 ..< B {
            for j in 0 ..< R { dtLow[b * R + j] = xDbl[b * (R + 2 * N) + j] }
            for n in 0 ..< N {
                bm[b * N + n] = xDbl[b * (R + 2 * N) + R + n]
                cm[b * N + n] = xDbl[b * (R + 2 * N) + R + N + n]
            }
        }
        var dt = [T](repeating: 0, count: B * E)
        BLAS.matmul(dtLow, p["dt_proj.weight"], transposeB: true, m: B, n: E, k: R, into: &dt)
        let update = try SelectiveStateUpdate<T>(batch: B, channels: E, state: N)
        var y = [T](repeating: 0, count: B * E)
        try update(state: &state.ssm, u: u, dt: dt, a: stateMatrix(p), b: bm, c: cm, d: p["D"], z: z,
                   dtBias: p["dt_proj.bias"], out: &y)
        var out = [T](repeating: 0, count: B * M)
        BLAS.matmul(y, p["out_proj.weight"], transposeB: true, m: B, n: M, k: E, into: &out)
        if let bias = p.values["out_proj.bias"] { addRowVector(bias, to: &out, rows: B) }
        return out
    }

    /// A = −exp(A_log): (E, N), by the scan's vectorized exponential (a step would otherwise
    /// spend as many scalar exponentials on A as on its state update).
    func stateMatrix(_ p: MambaParameters<T>) -> [T] {
        let aLog = p["A_log"]
        var a = [T](repeating: 0, count: aLog.count)
        aLog.withUnsafeBufferPointer { x in a.withUnsafeMutableBufferPointer { T.vectorExp(x.baseAddress!, $0.baseAddress!, x.count) } }
        for i in a.indices { a[i] = -a[i] }
        return a
    }

    /// The causal depthwise convolution: for each row (b, e) of x (rows, L),
    /// out[t] = bias_e + Σ_j w[e, j] · x[t − (K − 1) + j], where positions before 0 read the
    /// row's context (K − 1 values, oldest first).
    func causalConv(_ x: [T], context: [T], weight w: [T], bias: [T]?, rows: Int, length L: Int) -> [T] {
        let (E, K) = (configuration.innerWidth, configuration.convWidth)
        var out = [T](repeating: 0, count: rows * L)
        for row in 0 ..< rows {
            let e = row % E
            for t in 0 ..< L {
                var sum = bias?[e] ?? 0
                for j in 0 ..< K {
                    let s = t - (K - 1) + j
                    sum += w[e * K + j] * (s >= 0 ? x[row * L + s] : context[row * (K - 1) + (K - 1 + s)])
                }
                out[row * L + t] = sum
            }
        }
        return out
    }
}

/// Adds `v` to each of the `rows` rows of a row-major matrix with `v.count` columns.
func addRowVector<T: FFTScalar>(_ v: [T], to m: inout [T], rows: Int) {
    let n = v.count
    for r in 0 ..< rows {
        for j in 0 ..< n { m[r * n + j] += v[j] }
    }
}

