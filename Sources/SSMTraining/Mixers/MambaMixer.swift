import SSMKit

/// The Mamba block of the official `mamba_simple.py` (`Mamba`) as a ``SequenceMixer``.
/// Legend: B batch · L length · M model width · E inner width · N state · K conv width ·
/// R dt rank · S = R + 2N. Token-major: h and out are (B, L, M).
///
///     x, z  = in_proj(h)                                 (B, E, L) each, channel-major
///     u     = silu(causal depthwise conv1d(x) + bias)    kernel K, per channel
///     dt_r, B, C = x_proj(u)                             (B·L, S), token-major
///     Δ     = dt_proj.weight · dt_r                      (B, E, L); its bias enters the scan
///     y     = selective_scan(u, Δ, A = −exp(A_log), B, C, D, z, dt_proj.bias, softplus)
///     out   = out_proj(y)                                (B, L, M)
///
/// Every projection is a GEMM per sequence that reads and writes the layout its neighbours
/// use (a channel-major result is the transposed product), and the scan reads B and C
/// token-major where x_proj wrote them, so neither pass transposes anything. All buffers of a
/// (B, L) are made once (``Activations``) and reused: a pass allocates nothing.
///
/// Parameters (official names, ``MambaConfiguration/parameterShapes``): `in_proj.weight`,
/// `conv1d.weight` and `.bias`, `x_proj.weight`, `dt_proj.weight` and `.bias`, `A_log`, `D`,
/// `out_proj.weight` (and the projection biases when configured). The initialization is the
/// official one: linear layers and conv1d U(±1/√fan_in), dt_proj.weight U(±R^{-1/2}), Δ
/// log-uniform in [0.001, 0.1] (floored at 1e-4) stored as dt_proj.bias = softplus⁻¹(Δ),
/// A_log = log(1 … N), D = 1; `A_log` and `D` in the SSM group (no weight decay); out_proj
/// feeds the residual stream (a Mamba backbone divides it by √layers). Like the official
/// module, A_log, D and dt_proj.bias are used in the block's precision.
public final class MambaMixer<T: SSMScalar>: SequenceMixer, @unchecked Sendable {
    public typealias Scalar = T
    public let configuration: MambaConfiguration
    public let threads: Int
    public var width: Int { configuration.modelWidth }
    public var layout: SequenceLayout { .tokenMajor }
    public let parameterDeclarations: [ParameterDeclaration]
    let slots: MambaSlots
    private let passes = ReusePool<PassShape, Activations>()

    public init(configuration c: MambaConfiguration, threads: Int? = nil) throws(SSMError) {
        if let threads, threads < 1 { throw SSMError.value(argument: "threads", expected: "a positive count, got \(threads)") }
        configuration = c
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        let (M, E, K, R, N) = (c.modelWidth, c.innerWidth, c.convWidth, c.dtRank, c.state)
        func fan(_ n: Int) -> ParameterInitialization { .uniform(bound: 1 / Double(n).squareRoot()) }
        let initialization: [String: (ParameterInitialization, ParameterGroup, Bool)] = [
            "in_proj.weight": (fan(M), .standard, false), "in_proj.bias": (fan(M), .standard, false),
            "conv1d.weight": (fan(K), .standard, false), "conv1d.bias": (fan(K), .standard, false),
            "x_proj.weight": (fan(E), .standard, false), "dt_proj.weight": (fan(R), .standard, false),
            "dt_proj.bias": (.inverseSoftplusTimeStep(), .standard, false),
            "A_log": (.custom { _, count in (0 ..< count).map { Double.log(Double($0 % N + 1)) } }, .ssm, false),
            "D": (.constant(1), .ssm, false),
            "out_proj.weight": (fan(E), .standard, true), "out_proj.bias": (fan(E), .standard, false),
        ]
        let declarations = c.parameterShapes.map { name, shape in
            let (i, group, residual) = initialization[name]!
            return ParameterDeclaration(name, shape: shape, group: group, initialization: i, feedsResidual: residual)
        }
        parameterDeclarations = declarations
        slots = MambaSlots(declarations.map(\.name))
    }

    /// A convenience for the block's own model size: the official defaults (E = 2M, K = 4,
    /// R = ⌈M/16⌉) with state N.
    public convenience init(width: Int, state: Int, threads: Int? = nil) throws(SSMError) {
        try self.init(configuration: MambaConfiguration(modelWidth: width, state: state), threads: threads)
    }

    /// The buffers of one (B, L): what forward keeps for backward, and both passes' scratch.
    public final class Activations {
        public let batch: Int, length: Int
        let scan: SelectiveScan<T>
        let workspace: SelectiveScanWorkspace<T>
        /// Kept: x (conv input), pre (conv output before SiLU), u, z, Δ before its bias, y:
        /// (B, E, L) each; x_proj's output (B·L, S); A = −exp(A_log): (E, N); the conv's left
        /// context (B, E, K − 1), zero unless a prefill starts from a state.
        let x, pre, u, z, delta, y, xDbl, a, context: Buffer<T>
        /// Backward's scratch: the scan's du, dΔ, dz and dY (B, E, L), dx_proj (B·L, S), dA (E, N).
        let du, dDelta, dz, dY, dXDbl, dA: Buffer<T>
        /// Whether forward has filled the buffers.
        var filled = false

        /// Whether the backward buffers exist (false for inference-only buffers).
        public let trainable: Bool

        init(_ c: MambaConfiguration, batch B: Int, length L: Int, threads: Int, backward: Bool = true) throws(SSMError) {
            trainable = backward
            (batch, length) = (B, L)
            let (E, N, K, S) = (c.innerWidth, c.state, c.convWidth, c.dtRank + 2 * c.state)
            scan = try SelectiveScan<T>(
                shape: SelectiveScanShape(batch: B, channels: E, state: N, length: L,
                                          b: .tokenMajor(groups: 1, stride: S), c: .tokenMajor(groups: 1, stride: S)),
                deltaSoftplus: true, threads: threads)
            workspace = SelectiveScanWorkspace(scan, backward: backward)
            let sequence = B * E * L
            (x, pre, u, z, delta, y) = (Buffer(sequence), Buffer(sequence), Buffer(sequence), Buffer(sequence), Buffer(sequence), Buffer(sequence))
            (xDbl, a, context) = (Buffer(B * L * S), Buffer(E * N), Buffer(B * E * (K - 1)))
            let g = backward ? sequence : 0
            (du, dDelta, dz, dY) = (Buffer(g), Buffer(g), Buffer(g), Buffer(g))
            (dXDbl, dA) = (Buffer(backward ? B * L * S : 0), Buffer(backward ? E * N : 0))
        }
    }

    public func makeActivations(batch: Int, length: Int) throws(SSMError) -> Activations {
        guard batch >= 1, length >= 1 else { throw SSMError.value(argument: "batch, length", expected: "positive sizes, got (\(batch), \(length))") }
        return try Activations(configuration, batch: batch, length: length, threads: threads)
    }

    /// Activations for a pass that keeps none (step-mode prefill), from the mixer's pool.
    func scratch(batch: Int, length: Int) throws(SSMError) -> Activations {
        try passes.take(PassShape(batch: batch, length: length)) { () throws(SSMError) in try makeInferenceActivations(batch: batch, length: length) }
    }

    /// Buffers for passes that keep nothing for backward (prefill, inference): no gradient
    /// buffers. Mixers of one configuration can share them, one pass at a time.
    public func makeInferenceActivations(batch: Int, length: Int) throws(SSMError) -> Activations {
        guard batch >= 1, length >= 1 else { throw SSMError.value(argument: "batch, length", expected: "positive sizes, got (\(batch), \(length))") }
        return try Activations(configuration, batch: batch, length: length, threads: threads, backward: false)
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ h: UnsafeBufferPointer<T>, parameters p: ParameterView<T>, activations act: Activations,
                        into out: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        try checkSequence(h.count, "hidden_states", batch: act.batch, length: act.length)
        try checkSequence(out.count, "out", batch: act.batch, length: act.length)
        act.context.zero()
        try checkFiniteParameters(p)
        try run(h.baseAddress!, parameters: p, activations: act, ssmState: nil, into: out.baseAddress!)
    }

    /// Scan mode on (B, L) tokens from the conv context in `act.context` and an SSM state
    /// (zero when nil), writing out and, when given, the last SSM state.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func run(_ h: UnsafePointer<T>, parameters p: ParameterView<T>, activations act: Activations, ssmState: UnsafePointer<T>?,
             into out: UnsafeMutablePointer<T>, lastState: UnsafeMutablePointer<T>? = nil) throws(SSMError) {
        let c = configuration
        let (B, L) = (act.batch, act.length)
        let (M, E, N, K, R) = (c.modelWidth, c.innerWidth, c.state, c.convWidth, c.dtRank)
        let S = R + 2 * N
        act.filled = false
        // in_proj, per sequence as [x; z] = W·hᵀ: x and z come out channel-major (E, L).
        let w = p[slots.inProj].baseAddress!
        for half in 0 ..< 2 {
            let target = half == 0 ? act.x : act.z
            BLAS.matmul(batch: B, w + half * E * M, strideA: 0, h, strideB: L * M, transposeB: true, m: E, n: L, k: M,
                        into: target.base, strideC: E * L, threads: threads)
            if let bias = slots.inProjBias { addRowBias(p[bias].baseAddress! + half * E, to: target.base, batch: B, rows: E, length: L) }
        }
        // The causal depthwise conv and SiLU, rows in parallel.
        WorkerPool.forEachInParallel(B * E, threads: threads, ConvRows(
            x: act.x.base, context: act.context.base, weight: p[slots.convWeight].baseAddress!,
            bias: slots.convBias.map { p[$0].baseAddress! }, pre: act.pre.base, u: act.u.base, inner: E, width: K, length: L)) { rows, row, _ in
            rows.forward(row)
        }
        // x_proj, per sequence: (L, S) = uᵀ·Wᵀ, token-major.
        BLAS.matmul(batch: B, act.u.base, strideA: E * L, transposeA: true, p[slots.xProj].baseAddress!, strideB: 0, transposeB: true,
                    m: L, n: S, k: E, into: act.xDbl.base, strideC: L * S, threads: threads)
        // dt_proj, per sequence: Δ (E, L) = W·dt_rᵀ, dt_r the first R columns of x_proj's output.
        BLAS.matmul(batch: B, p[slots.dtProjWeight].baseAddress!, strideA: 0, act.xDbl.base, strideB: L * S, transposeB: true, ldb: S,
                    m: E, n: L, k: R, into: act.delta.base, strideC: E * L, threads: threads)
        // A = −exp(A_log), by the scan's vectorized exponential.
        let aLog = p[slots.aLog]
        T.vectorExp(aLog.baseAddress!, act.a.base, aLog.count)
        for i in 0 ..< aLog.count { act.a.base[i] = -act.a.base[i] }
        let operands = SelectiveScanOperands<T>(
            u: act.u.base, delta: act.delta.base, a: act.a.base, b: act.xDbl.base + R, c: act.xDbl.base + R + N, d: p[slots.d].baseAddress!,
            z: act.z.base, deltaBias: p[slots.dtProjBias].baseAddress!, initialState: ssmState)
        do {
            try act.scan.forward(operands, out: act.y.base, lastState: lastState, workspace: act.workspace)
        } catch {
            try checkFinite(h, B * L * M, "hidden_states")
            try checkFiniteParameters(p)
            throw SSMError.value(argument: "parameters", expected: "finite values of this block's parameters (the scan met a NaN or infinity)")
        }
        // out_proj, per sequence: (L, M) = yᵀ·Wᵀ.
        BLAS.matmul(batch: B, act.y.base, strideA: E * L, transposeA: true, p[slots.outProj].baseAddress!, strideB: 0, transposeB: true,
                    m: L, n: M, k: E, into: out, strideC: L * M, threads: threads)
        if let bias = slots.outProjBias { addBias(p[bias].baseAddress!, to: out, rows: B * L, width: M) }
        act.filled = true
    }
}

/// The declaration indices of a Mamba block's parameters (the projection biases are optional).
struct MambaSlots: Sendable {
    let inProj, convWeight, xProj, dtProjWeight, dtProjBias, aLog, d, outProj: Int
    let inProjBias, convBias, outProjBias: Int?

    init(_ names: [String]) {
        func index(_ name: String) -> Int? { names.firstIndex(of: name) }
        (inProj, convWeight, xProj) = (index("in_proj.weight")!, index("conv1d.weight")!, index("x_proj.weight")!)
        (dtProjWeight, dtProjBias, aLog, d) = (index("dt_proj.weight")!, index("dt_proj.bias")!, index("A_log")!, index("D")!)
        outProj = index("out_proj.weight")!
        (inProjBias, convBias, outProjBias) = (index("in_proj.bias"), index("conv1d.bias"), index("out_proj.bias"))
    }
}

/// The causal depthwise convolution of a Mamba block, one (b, e) row of L per task:
/// pre[t] = bias_e + Σ_j w[e, j]·x[t − (K − 1) + j], positions before 0 reading the row's
/// context (K − 1 values, oldest first); u = silu(pre).
struct ConvRows<T: FFTScalar> {
    let x, context: UnsafeMutablePointer<T>
    let weight: UnsafePointer<T>, bias: UnsafePointer<T>?
    let pre, u: UnsafeMutablePointer<T>
    let inner, width, length: Int

    /// x at position s of row `row` (s ≥ −(K − 1)).
    @inline(__always)
    func input(_ row: Int, _ s: Int) -> T {
        s >= 0 ? x[row * length + s] : context[row * (width - 1) + (width - 1 + s)]
    }

    func forward(_ row: Int) {
        let (e, K, L) = (row % inner, width, length)
        let w = weight + e * K, b = bias?[e] ?? 0
        let xs = x + row * L, p = pre + row * L
        // The first K − 1 positions reach into the context.
        let head = min(K - 1, L)
        for t in 0 ..< head {
            var sum = b
            for j in 0 ..< K { sum += w[j] * input(row, t - (K - 1) + j) }
            p[t] = sum
        }
        // The rest, one tap at a time over all positions (the same sums in the same order,
        // now contiguous, so they vectorize).
        if L > head {
            for t in head ..< L { p[t] = b }
            for j in 0 ..< K {
                let wj = w[j], shifted = xs + (j - (K - 1))
                for t in head ..< L { p[t] += wj * shifted[t] }
            }
        }
        siluRow(p, into: u + row * L, count: L)
    }
}

/// A buffer of one pass, allocated once and freed with its owner.
final class Buffer<T: FFTScalar>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    let count: Int

    init(_ count: Int) {
        self.count = count
        base = .allocate(capacity: max(1, count))
        base.initialize(repeating: 0, count: max(1, count))
    }

    deinit { base.deallocate() }

    func zero() { base.update(repeating: 0, count: count) }
}

/// Adds bias[r] to each of the `rows` rows of L values of every sequence of a (B, rows, L) buffer.
func addRowBias<T: FFTScalar>(_ bias: UnsafePointer<T>, to x: UnsafeMutablePointer<T>, batch B: Int, rows: Int, length L: Int) {
    for b in 0 ..< B {
        for r in 0 ..< rows {
            let row = x + (b * rows + r) * L
            for t in 0 ..< L { row[t] += bias[r] }
        }
    }
}

/// Throws when one of the `count` values at `p` is not finite, naming `name`: one branch-free
/// pass (it vectorizes), the offending index looked up only on failure.
func checkFinite<T: FFTScalar>(_ p: UnsafePointer<T>, _ count: Int, _ name: String) throws(SSMError) {
    guard !allFinite(p, count) else { return }
    for i in 0 ..< count where !p[i].isFinite {
        throw SSMError.value(argument: name, expected: "finite values (element \(i) is \(p[i]))")
    }
}

extension SequenceMixer where Scalar: FFTScalar {
    /// Throws unless every declared parameter in `p` is finite, naming the first that is not.
    func checkFiniteParameters(_ p: ParameterView<Scalar>) throws(SSMError) {
        for (i, d) in parameterDeclarations.enumerated() {
            let v = p[i]
            try checkFinite(v.baseAddress!, v.count, d.name)
        }
    }
}
