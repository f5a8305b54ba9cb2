import SSMKit

/// The Mamba-2 block of the official `mamba2.py` (`Mamba2`, `rmsnorm=True`,
/// `norm_before_gate=False`, `d_mlp = 0`) as a ``SequenceMixer``. Legend: B batch · L length ·
/// M model width · E inner width · H heads · P head dimension · G groups · N state ·
/// K conv width · C = E + 2GN. Token-major throughout: every buffer is (B·L, features), so no
/// pass transposes anything.
///
///     z, xBC, dt = in_proj(h)                          (B·L, E), (B·L, C), (B·L, H)
///     xBC   = silu(causal depthwise conv1d(xBC) + bias)  kernel K, per channel
///     x, B, C = xBC                                     (B·L, E), (B·L, GN), (B·L, GN)
///     y     = ssd(x, dt, A = −exp(A_log), B, C, D, dt_bias, softplus, time_step_limit)
///     n     = rmsnorm_G(y ⊙ silu(z)) ⊙ norm.weight     RMS over each of G groups of E/G
///     out   = out_proj(n)                              (B·L, M)
///
/// The SSD scan reads x, B, C and dt where the conv and in_proj wrote them (strided operands);
/// all buffers of a (B, L) are made once (``Activations``) and reused.
///
/// Initialization (official): in_proj and out_proj U(±1/√fan_in), conv U(±1/√K);
/// dt_bias = softplus⁻¹(Δ), Δ log-uniform in [0.001, 0.1] floored at 1e-4; A_log = log U(1, 16);
/// D = 1; norm.weight = 1. `dt_bias`, `A_log` and `D` are in the SSM group (no weight decay, as
/// the official `_no_weight_decay`); out_proj feeds the residual stream.
public final class Mamba2Mixer<T: SSMScalar>: SequenceMixer, @unchecked Sendable {
    public typealias Scalar = T
    public let configuration: Mamba2Configuration
    public let threads: Int
    public var width: Int { configuration.modelWidth }
    public var layout: SequenceLayout { .tokenMajor }
    public let parameterDeclarations: [ParameterDeclaration]
    let slots: Mamba2Slots
    private let passes = ReusePool<PassShape, Activations>()

    public init(configuration c: Mamba2Configuration, threads: Int? = nil) throws(SSMError) {
        if let threads, threads < 1 { throw SSMError.value(argument: "threads", expected: "a positive count, got \(threads)") }
        configuration = c
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        let (M, E, K) = (c.modelWidth, c.innerWidth, c.convWidth)
        func fan(_ n: Int) -> ParameterInitialization { .uniform(bound: 1 / Double(n).squareRoot()) }
        let initialization: [String: (ParameterInitialization, ParameterGroup, Bool)] = [
            "dt_bias": (.inverseSoftplusTimeStep(), .ssm, false),
            "A_log": (.custom { rng, count in (0 ..< count).map { _ in Double.log(Double.random(in: 1 ..< 16, using: &rng)) } }, .ssm, false),
            "D": (.constant(1), .ssm, false),
            "in_proj.weight": (fan(M), .standard, false), "in_proj.bias": (fan(M), .standard, false),
            "conv1d.weight": (fan(K), .standard, false), "conv1d.bias": (fan(K), .standard, false),
            "norm.weight": (.constant(1), .standard, false),
            "out_proj.weight": (fan(E), .standard, true), "out_proj.bias": (fan(E), .standard, false),
        ]
        let declarations = c.parameterShapes.map { name, shape in
            let (i, group, residual) = initialization[name]!
            return ParameterDeclaration(name, shape: shape, group: group, initialization: i, feedsResidual: residual)
        }
        parameterDeclarations = declarations
        slots = Mamba2Slots(declarations.map(\.name))
    }

    /// The block of a model of width M with state N: E = 2M, heads of dimension
    /// min(64, E / 8) (at least eight heads: a small model with the official P = 64 would have
    /// two, one decay rate each, and does not learn selective copying), one group, K = 4, Q = 256.
    public convenience init(width: Int, state: Int, threads: Int? = nil) throws(SSMError) {
        try self.init(configuration: Mamba2Configuration(modelWidth: width, state: state,
                                                         headDimension: Mamba2Configuration.defaultHeadDimension(innerWidth: 2 * width)),
                      threads: threads)
    }

    /// The buffers of one (B, L).
    public final class Activations {
        public let batch: Int, length: Int
        let scan: SSDScan<T>
        let workspace: SSDWorkspace<T>
        /// Kept: in_proj's output (B·L, 2E + 2GN + H); the conv before and after SiLU (B·L, C);
        /// y and y ⊙ silu(z) (B·L, E); n, out_proj's input (B·L, E); 1/RMS per (token, group);
        /// A (H); the conv's left context (B, K − 1, C), zero unless a prefill starts from a state;
        /// the conv weights as (K, C).
        let zx, pre, xbc, y, gated, normed, inverseRMS, a, context, taps: Buffer<T>
        /// Backward's scratch: d in_proj output, d xBC, dy, dn (and dA).
        let dzx, dxbc, dy, dn, dA: Buffer<T>
        var filled = false
        public let trainable: Bool

        init(_ c: Mamba2Configuration, batch B: Int, length L: Int, threads: Int, backward: Bool) throws(SSMError) {
            (batch, length, trainable) = (B, L, backward)
            let shape = try SSDShape(batch: B, length: L, heads: c.heads, headDimension: c.headDimension, groups: c.groups, state: c.state)
            scan = try SSDScan<T>(shape: shape, chunkLength: c.chunkLength, timeStep: c.timeStep, threads: threads)
            workspace = SSDWorkspace(scan, backward: backward)
            let (rows, E, C, K) = (B * L, c.innerWidth, c.convChannels, c.convWidth)
            (zx, pre, xbc) = (Buffer(rows * c.projectionWidth), Buffer(rows * C), Buffer(rows * C))
            (y, gated, normed, inverseRMS) = (Buffer(rows * E), Buffer(rows * E), Buffer(rows * E), Buffer(rows * c.groups))
            (a, context, taps) = (Buffer(c.heads), Buffer(B * (K - 1) * C), Buffer(K * C))
            let g = backward ? 1 : 0
            (dzx, dxbc, dy, dn, dA) = (Buffer(g * rows * c.projectionWidth), Buffer(g * rows * C), Buffer(g * rows * E), Buffer(g * rows * E),
                                        Buffer(g * c.heads))
        }
    }

    public func makeActivations(batch: Int, length: Int) throws(SSMError) -> Activations {
        guard batch >= 1, length >= 1 else { throw SSMError.value(argument: "batch, length", expected: "positive sizes, got (\(batch), \(length))") }
        return try Activations(configuration, batch: batch, length: length, threads: threads, backward: true)
    }

    /// Buffers for passes that keep nothing for backward (prefill, inference).
    public func makeInferenceActivations(batch: Int, length: Int) throws(SSMError) -> Activations {
        guard batch >= 1, length >= 1 else { throw SSMError.value(argument: "batch, length", expected: "positive sizes, got (\(batch), \(length))") }
        return try Activations(configuration, batch: batch, length: length, threads: threads, backward: false)
    }

    func scratch(batch: Int, length: Int) throws(SSMError) -> Activations {
        try passes.take(PassShape(batch: batch, length: length)) { () throws(SSMError) in try makeInferenceActivations(batch: batch, length: length) }
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
    /// (zero when nil), writing out and, when given, the final SSM state.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func run(_ h: UnsafePointer<T>, parameters p: ParameterView<T>, activations act: Activations, ssmState: UnsafePointer<T>?,
             into out: UnsafeMutablePointer<T>, finalState: UnsafeMutablePointer<T>? = nil) throws(SSMError) {
        let c = configuration
        let (B, L) = (act.batch, act.length)
        let (M, E, H, G, K) = (c.modelWidth, c.innerWidth, c.heads, c.groups, c.convWidth)
        let (C, W, rows) = (c.convChannels, c.projectionWidth, B * L)
        act.filled = false
        // in_proj: (B·L, W) = h Wᵀ.
        BLAS.matmul(h, p[slots.inProj].baseAddress!, transposeB: true, m: rows, n: W, k: M, into: act.zx.base, threads: threads)
        if let bias = slots.inProjBias { addBias(p[bias].baseAddress!, to: act.zx.base, rows: rows, width: W) }
        // The causal depthwise conv over xBC and SiLU, blocks of tokens in parallel.
        let w = p[slots.convWeight].baseAddress!
        for ch in 0 ..< C { for j in 0 ..< K { act.taps.base[j * C + ch] = w[ch * K + j] } }
        let conv = TokenConv(input: act.zx.base + E, inputStride: W, context: act.context.base, taps: act.taps.base,
                             bias: slots.convBias.map { p[$0].baseAddress! }, pre: act.pre.base, out: act.xbc.base,
                             channels: C, width: K, length: L)
        WorkerPool.forEachInParallel(B * conv.blocks, threads: threads, conv) { conv, task, _ in conv.forward(task) }
        // A = −exp(A_log).
        let aLog = p[slots.aLog]
        T.vectorExp(aLog.baseAddress!, act.a.base, H)
        for i in 0 ..< H { act.a.base[i] = -act.a.base[i] }
        do {
            try act.scan.forward(operands(act, p, ssmState: ssmState), out: act.y.base, outStride: E, finalStates: finalState, workspace: act.workspace)
        } catch {
            try checkFinite(h, rows * M, "hidden_states")
            try checkFiniteParameters(p)
            throw SSMError.value(argument: "parameters", expected: "finite values of this block's parameters (the scan met a NaN or infinity)")
        }
        // The gated RMSNorm, then out_proj: (B·L, M) = n Wᵀ.
        let norm = GatedNorm(y: act.y.base, z: act.zx.base, zStride: W, weight: p[slots.normWeight].baseAddress!, gated: act.gated.base,
                             normed: act.normed.base, inverseRMS: act.inverseRMS.base, width: E, groups: G, epsilon: T(c.normEpsilon))
        WorkerPool.forEachInParallel(rows, threads: rows >= 64 ? threads : 1, norm) { norm, row, _ in norm.forward(row) }
        BLAS.matmul(act.normed.base, p[slots.outProj].baseAddress!, transposeB: true, m: rows, n: M, k: E, into: out, threads: threads)
        if let bias = slots.outProjBias { addBias(p[bias].baseAddress!, to: out, rows: rows, width: M) }
        act.filled = true
    }

    /// The SSD operands of a pass: x, B, C in the conv's output, dt in in_proj's.
    func operands(_ act: Activations, _ p: ParameterView<T>, ssmState: UnsafePointer<T>?) -> SSDOperands<T> {
        let c = configuration
        let (E, G, N, C, W) = (c.innerWidth, c.groups, c.state, c.convChannels, c.projectionWidth)
        return SSDOperands(x: act.xbc.base, xStride: C, dt: act.zx.base + 2 * E + 2 * G * N, dtStride: W, a: act.a.base,
                           b: act.xbc.base + E, bStride: C, c: act.xbc.base + E + G * N, cStride: C, d: p[slots.d].baseAddress!,
                           dtBias: p[slots.dtBias].baseAddress!, initialStates: ssmState)
    }
}

/// The declaration indices of a Mamba-2 block's parameters (the biases are optional).
struct Mamba2Slots: Sendable {
    let dtBias, aLog, d, inProj, convWeight, normWeight, outProj: Int
    let inProjBias, convBias, outProjBias: Int?

    init(_ names: [String]) {
        func index(_ name: String) -> Int? { names.firstIndex(of: name) }
        (dtBias, aLog, d, inProj) = (index("dt_bias")!, index("A_log")!, index("D")!, index("in_proj.weight")!)
        (convWeight, normWeight, outProj) = (index("conv1d.weight")!, index("norm.weight")!, index("out_proj.weight")!)
        (inProjBias, convBias, outProjBias) = (index("in_proj.bias"), index("conv1d.bias"), index("out_proj.bias"))
    }
}

/// Adds bias[j] to column j of each of `rows` rows of `width` values.
func addBias<T: FFTScalar>(_ bias: UnsafePointer<T>, to x: UnsafeMutablePointer<T>, rows: Int, width: Int) {
    for r in 0 ..< rows {
        let row = x + r * width
        for j in 0 ..< width { row[j] += bias[j] }
    }
}

/// A causal depthwise convolution over token-major rows, vectorized across channels:
/// pre[t, ch] = bias[ch] + Σ_j w[ch, j]·in[t − (K − 1) + j, ch], positions before 0 reading
/// the sequence's context (K − 1 tokens, oldest first); out = silu(pre). One task is a block of
/// 64 tokens of one sequence.
struct TokenConv<T: FFTScalar> {
    let input: UnsafePointer<T>
    let inputStride: Int
    let context: UnsafePointer<T>
    /// The weights as (K, C): tap j's C values contiguous.
    let taps: UnsafePointer<T>
    let bias: UnsafePointer<T>?
    let pre, out: UnsafeMutablePointer<T>
    let channels, width, length: Int

    static var blockLength: Int { 64 }
    var blocks: Int { (length + Self.blockLength - 1) / Self.blockLength }

    /// Row s ≥ −(K − 1) of sequence b's input.
    @inline(__always)
    func row(_ b: Int, _ s: Int) -> UnsafePointer<T> {
        s >= 0 ? input + (b * length + s) * inputStride : context + (b * (width - 1) + (width - 1 + s)) * channels
    }

    @inline(__always)
    func forward(_ task: Int) {
        let b = task / blocks, first = (task % blocks) * Self.blockLength
        let C = channels, K = width
        for t in first ..< Swift.min(length, first + Self.blockLength) {
            let p = pre + (b * length + t) * C
            if let bias { p.update(from: bias, count: C) } else { p.update(repeating: 0, count: C) }
            for j in 0 ..< K {
                let x = row(b, t - (K - 1) + j), w = taps + j * C
                for ch in 0 ..< C { p[ch] += w[ch] * x[ch] }
            }
            let o = out + (b * length + t) * C
            for ch in 0 ..< C { o[ch] = silu(p[ch]) }
        }
    }
}

/// The gated RMSNorm of Mamba-2 (`norm_before_gate=False`) on token rows: g = y ⊙ silu(z),
/// n = g / √(mean over its group of g² + ε) ⊙ weight, for G groups of E/G channels.
struct GatedNorm<T: FFTScalar> {
    let y: UnsafePointer<T>
    let z: UnsafePointer<T>
    let zStride: Int
    let weight: UnsafePointer<T>
    let gated, normed, inverseRMS: UnsafeMutablePointer<T>
    let width, groups: Int
    let epsilon: T

    @inline(__always)
    func forward(_ row: Int) {
        let E = width, size = width / groups
        let yr = y + row * E, zr = z + row * zStride, g = gated + row * E, n = normed + row * E
        for i in 0 ..< E { g[i] = yr[i] * silu(zr[i]) }
        for k in 0 ..< groups {
            var sum: T = 0
            for i in k * size ..< (k + 1) * size { sum += g[i] * g[i] }
            let r = 1 / (sum / T(size) + epsilon).squareRoot()
            inverseRMS[row * groups + k] = r
            for i in k * size ..< (k + 1) * size { n[i] = g[i] * r * weight[i] }
        }
    }

    /// From dn (row `row` of `dNormed`): dy and dz (at dz's stride), and dweight's share
    /// added into `dWeightRow` (one row of partial sums per token).
    @inline(__always)
    func backward(_ row: Int, dNormed: UnsafePointer<T>, dy: UnsafeMutablePointer<T>, dz: UnsafeMutablePointer<T>) {
        let E = width, size = width / groups
        let yr = y + row * E, zr = z + row * zStride, g = gated + row * E, dn = dNormed + row * E
        let dyr = dy + row * E, dzr = dz + row * zStride
        for k in 0 ..< groups {
            let r = inverseRMS[row * groups + k]
            var s: T = 0
            for i in k * size ..< (k + 1) * size { s += dn[i] * weight[i] * g[i] }
            let correction = r * r * r * s / T(size)
            for i in k * size ..< (k + 1) * size {
                let dg = r * dn[i] * weight[i] - correction * g[i]
                let zi = zr[i]
                dyr[i] = dg * silu(zi)
                dzr[i] += dg * yr[i] * siluDerivative(zi)
            }
        }
    }
}
