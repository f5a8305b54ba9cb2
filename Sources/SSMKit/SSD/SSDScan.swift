/// The SSD scan of Mamba-2 ("Transformers are SSMs", Dao & Gu 2024), with the semantics of the
/// official `mamba_chunk_scan_combined` (and of `ssd_minimal_discrete` on x·dt′ and A·dt′).
/// For each batch b and head h (group g = h / (H/G)), with dt′ from ``SSDTimeStep``:
///
///     S_t = exp(dt′_t A_h) S_{t−1} + dt′_t x_t B_tᵀ      S (P × N), S_{−1} = initial state or 0
///     y_t = S_t C_t + D_h ⊙ x_t
///
/// A is a scalar per head, so the sequence can be cut into chunks of Q tokens and each chunk
/// computed with matrix products (the "duality"). With a_t = dt′_t A_h, cumulative sums
/// Λ_t = a_{t₀} + … + a_t from the chunk's first token t₀, X̃ = dt′ ⊙ x (q × P) and the
/// chunk's B, C (q × N):
///
///     Y  = (C Bᵀ ⊙ 𝓛) X̃  +  diag(e^Λ) C S_inᵀ  +  D ⊙ X      𝓛_ts = e^{Λ_t − Λ_s} for s ≤ t, else 0
///     S_out = e^{Λ_last} S_in + X̃ᵀ diag(e^{Λ_last − Λ}) B
///
/// The first term is the intra-chunk (quadratic, attention-like) part, the rest passes the
/// state from chunk to chunk. Every product is a GEMM on the chosen BLAS. Work runs in two
/// parallel phases: per (batch, group, chunk), C Bᵀ once for the group's heads, then each
/// head's intra-chunk output and the state its chunk adds; per (batch, head), the states passed
/// along the chunks and each chunk's inter-chunk output. Any L works (the last chunk is
/// shorter). The backward pass runs the same phases in reverse (``backward(_:dOut:dOutStride:dFinalStates:into:workspace:)``),
/// ``step(states:_:out:outStride:)`` is the recurrence for one token, and ``reference(_:)`` the
/// plain loop the tests hold the others to.
///
/// Accuracy: 𝓛 is formed as e^{Λ_t}·e^{−Λ_s} when |Λ| stays below 60 (Float) or 600 (Double)
/// over the chunk, which keeps both factors normal numbers, and as e^{Λ_t − Λ_s} otherwise.
public struct SSDScan<T: FFTScalar>: Sendable {
    public let shape: SSDShape
    /// Q, the tokens per chunk (the official `chunk_size`; 256 in mamba2-130m).
    public let chunkLength: Int
    public let timeStep: SSDTimeStep
    /// Worker threads per call.
    public let threads: Int

    public static var defaultChunkLength: Int { 256 }

    public init(shape: SSDShape, chunkLength: Int = SSDScan.defaultChunkLength, timeStep: SSDTimeStep = .official,
                threads: Int? = nil) throws(SSMError) {
        if let threads, threads < 1 { throw SSMError.value(argument: "threads", expected: "a positive count, got \(threads)") }
        guard chunkLength >= 1 else { throw SSMError.value(argument: "chunk_size", expected: "a positive token count, got \(chunkLength)") }
        (self.shape, self.chunkLength, self.timeStep) = (shape, chunkLength, timeStep)
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
    }

    /// ⌈L / Q⌉.
    public var chunks: Int { (shape.length + chunkLength - 1) / chunkLength }

    /// The tokens of chunk c.
    @inlinable
    func tokens(_ c: Int) -> Int { Swift.min(chunkLength, shape.length - c * chunkLength) }

    /// dt′ from the raw dt plus bias: softplus and the clamp of ``timeStep``.
    @inlinable
    func processed(_ v: T) -> T {
        var s = timeStep.softplus ? softplus(v) : v
        if timeStep.clamps { s = Swift.min(Swift.max(s, T(timeStep.minimum)), T(timeStep.maximum)) }
        return s
    }

    /// ∂dt′/∂(dt + bias) at v: the softplus's slope, zero where the clamp is active (as
    /// `torch.clamp`'s gradient: the bounds themselves pass it).
    @inlinable
    func processedDerivative(_ v: T) -> T {
        let s = timeStep.softplus ? softplus(v) : v
        if timeStep.clamps, s < T(timeStep.minimum) || s > T(timeStep.maximum) { return 0 }
        return timeStep.softplus ? (v > 20 ? 1 : sigmoid(v)) : 1
    }

    /// The largest |Λ| over a chunk for which 𝓛 is formed as a product of two exponentials.
    @inlinable
    static var factoredLimit: T { T.self == Float.self ? 60 : 600 }
}

/// The buffers of an SSD scan of one shape: dt′ and the chunk-relative cumulative sums Λ
/// (B, H, L), the state entering every chunk (B, H, chunks + 1, P, N), and each worker's
/// scratch; with `backward`, the gradients' scratch too. Made once and reused; one call at a time.
public final class SSDWorkspace<T: FFTScalar>: @unchecked Sendable {
    let shape: SSDShape
    let chunkLength: Int
    let workers: Int
    let trainable: Bool
    let storage = Workspace<T>()
    /// dt′ and Λ, (B, H, L).
    let dt, cumulative: UnsafeMutablePointer<T>
    /// Slot c of (b, h) holds the state entering chunk c; slot `chunks` the final state.
    let states: UnsafeMutablePointer<T>
    /// Backward: the state gradients by slot (slot c + 1: ∂/∂ the state after chunk c; slot 0:
    /// ∂/∂ the initial state), and per (b, h, c) ∂/∂e^{Λ_last} and the partial sums of dA,
    /// d dt_bias and dD.
    let stateGradients, decayGradients, partialA, partialBias, partialD: UnsafeMutablePointer<T>
    /// Per worker: C Bᵀ, 𝓛, the masked product, their gradients (Q × Q); X̃ and its gradient
    /// (Q × P); two (Q × max(P, N)) and three (Q) vectors.
    let cb, decay, masked, dCB, dMasked, xt, dXt, wide1, wide2, v1, v2, v3: [UnsafeMutablePointer<T>]
    /// Whether forward has filled the buffers.
    var filled = false

    public init(_ scan: SSDScan<T>, backward: Bool) {
        shape = scan.shape
        chunkLength = scan.chunkLength
        trainable = backward
        let s = scan.shape
        let (B, L, H, P, N) = (s.batch, s.length, s.heads, s.headDimension, s.state)
        let Q = Swift.min(scan.chunkLength, L), chunks = scan.chunks
        workers = Swift.max(1, scan.threads)
        let st = storage
        dt = st.zeros(B * H * L)
        cumulative = st.zeros(B * H * L)
        states = st.zeros(B * H * (chunks + 1) * P * N)
        let g = backward
        stateGradients = st.zeros(g ? B * H * (chunks + 1) * P * N : 0)
        decayGradients = st.zeros(g ? B * H * chunks : 0)
        partialA = st.zeros(g ? B * H * chunks : 0)
        partialBias = st.zeros(g ? B * H * chunks : 0)
        partialD = st.zeros(g ? B * H * chunks * P : 0)
        let workers = self.workers
        let perWorker = { (count: Int) -> [UnsafeMutablePointer<T>] in (0 ..< workers).map { _ in st.zeros(count) } }
        let wide = Q * Swift.max(P, N)
        (cb, decay, masked) = (perWorker(Q * Q), perWorker(Q * Q), perWorker(Q * Q))
        (dCB, dMasked) = (perWorker(g ? Q * Q : 0), perWorker(g ? Q * Q : 0))
        (xt, dXt) = (perWorker(Q * P), perWorker(g ? Q * P : 0))
        (wide1, wide2) = (perWorker(wide), perWorker(wide))
        (v1, v2, v3) = (perWorker(Q), perWorker(Q), perWorker(Q))
    }

    /// The state slot c of sequence b, head h.
    @inline(__always)
    func slot(_ buffer: UnsafeMutablePointer<T>, _ b: Int, _ h: Int, _ c: Int, chunks: Int) -> UnsafeMutablePointer<T> {
        buffer + ((b * shape.heads + h) * (chunks + 1) + c) * shape.headDimension * shape.state
    }
}

extension SSDScan {
    // MARK: Forward, on the caller's buffers

    /// out (token (b, t) at (b·L + t)·`outStride`, head h's P values at +h·P) and, when given,
    /// the final states (B, H, P, N), allocating nothing. The workspace keeps what backward needs.
    /// - Throws: ``SSMError`` for a workspace of another scan, or when out or the final states
    ///   are not finite (an input is not, or the scan overflowed).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ x: SSDOperands<T>, out: UnsafeMutablePointer<T>, outStride: Int, finalStates: UnsafeMutablePointer<T>?,
                        workspace ws: SSDWorkspace<T>) throws(SSMError) {
        try forwardChunks(x, out: out, outStride: outStride, finalStates: finalStates, workspace: ws)
    }

    /// The body of the in-place forward (called within the module, which must not name the
    /// exported specializations of the public entry point).
    @inline(__always)
    func forwardChunks(_ x: SSDOperands<T>, out: UnsafeMutablePointer<T>, outStride: Int, finalStates: UnsafeMutablePointer<T>?,
                       workspace ws: SSDWorkspace<T>) throws(SSMError) {
        try checkWorkspace(ws, backward: false)
        ws.filled = false
        let s = shape
        let (B, G, H, P, N) = (s.batch, s.groups, s.heads, s.headDimension, s.state)
        let chunks = self.chunks
        let context = ForwardContext(scan: self, x: x, out: out, outStride: outStride, ws: ws)
        WorkerPool.forEachInParallel(B * G * chunks, threads: threads, context) { c, task, worker in c.chunkPhase(task, worker: worker) }
        WorkerPool.forEachInParallel(B * H, threads: threads, context) { c, row, worker in c.statePhase(row, worker: worker) }
        var finite = true
        for b in 0 ..< B {
            for t in 0 ..< s.length { finite = finite && allFinite(out + (b * s.length + t) * outStride, H * P) }
        }
        if let finalStates {
            for b in 0 ..< B {
                for h in 0 ..< H { (finalStates + (b * H + h) * P * N).update(from: ws.slot(ws.states, b, h, chunks, chunks: chunks), count: P * N) }
            }
            finite = finite && allFinite(finalStates, s.stateCount)
        }
        guard finite else {
            throw SSMError.value(argument: "x, dt, A, B, C, D, dt_bias, initial_states",
                                 expected: "finite values (the scan's output is not finite)")
        }
        ws.filled = true
    }

    func checkWorkspace(_ ws: SSDWorkspace<T>, backward: Bool) throws(SSMError) {
        guard ws.shape == shape, ws.chunkLength == chunkLength, ws.workers >= threads else {
            throw SSMError.value(argument: "workspace", expected: "a workspace made for this scan (shape, chunk size, threads)")
        }
        if backward, !ws.trainable { throw SSMError.value(argument: "workspace", expected: "a workspace made with backward: true") }
    }
}

/// y += α x over `count` values (a loop the compiler vectorizes: no index arithmetic to check).
@inline(__always)
func axpy<T: FFTScalar>(_ alpha: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ count: Int) {
    for i in 0 ..< count { y[i] += alpha * x[i] }
}

/// y = α x over `count` values.
@inline(__always)
func scale<T: FFTScalar>(_ alpha: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ count: Int) {
    for i in 0 ..< count { y[i] = alpha * x[i] }
}

/// y += a ⊙ x over `count` values.
@inline(__always)
func multiplyAdd<T: FFTScalar>(_ a: UnsafePointer<T>, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ count: Int) {
    for i in 0 ..< count { y[i] += a[i] * x[i] }
}

/// What both forward phases read.
struct ForwardContext<T: FFTScalar> {
    let scan: SSDScan<T>
    let x: SSDOperands<T>
    let out: UnsafeMutablePointer<T>
    let outStride: Int
    let ws: SSDWorkspace<T>

    /// Per (batch, group, chunk): dt′ and Λ of the group's heads, C Bᵀ, and for each head the
    /// intra-chunk output (written to out) and the state its chunk adds (slot c + 1).
    @inline(__always)
    func chunkPhase(_ task: Int, worker: Int) {
        let s = scan.shape
        let (L, H, P, G, N, Q) = (s.length, s.heads, s.headDimension, s.groups, s.state, scan.chunkLength)
        let chunks = scan.chunks
        let c = task % chunks, g = (task / chunks) % G, b = task / (chunks * G)
        let t0 = c * Q, q = scan.tokens(c)
        let cb = ws.cb[worker], xt = ws.xt[worker], wb = ws.wide1[worker]
        let bm = x.b + (b * L + t0) * x.bStride + g * N, cm = x.c + (b * L + t0) * x.cStride + g * N
        // C Bᵀ (q × q), shared by the group's heads.
        T.gemm(transposeA: false, transposeB: true, m: q, n: q, k: N, alpha: 1, a: cm, lda: x.cStride, b: bm, ldb: x.bStride,
               beta: 0, c: cb, ldc: q)
        for h in g * s.headsPerGroup ..< (g + 1) * s.headsPerGroup {
            let row = (b * H + h) * L + t0
            let dt = ws.dt + row, lambda = ws.cumulative + row
            let a = x.a[h]
            var run: T = 0
            for t in 0 ..< q {
                let v = x.dt[(b * L + t0 + t) * x.dtStride + h] + (x.dtBias?[h] ?? 0)
                dt[t] = scan.processed(v)
                run += dt[t] * a
                lambda[t] = run
            }
            scan.maskedDecay(lambda, q: q, cb: cb, decay: ws.decay[worker], masked: ws.masked[worker], worker: worker, ws: ws)
            let xh = x.x + (b * L + t0) * x.xStride + h * P
            for t in 0 ..< q {
                scale(dt[t], xh + t * x.xStride, xt + t * P, P)
            }
            // Intra-chunk: Y = (C Bᵀ ⊙ 𝓛) X̃.
            T.gemm(transposeA: false, transposeB: false, m: q, n: P, k: q, alpha: 1, a: ws.masked[worker], lda: q, b: xt, ldb: P,
                   beta: 0, c: out + (b * L + t0) * outStride + h * P, ldc: outStride)
            // The state the chunk adds: X̃ᵀ diag(e^{Λ_last − Λ}) B.
            let w = ws.v1[worker]
            for t in 0 ..< q { w[t] = lambda[q - 1] - lambda[t] }
            T.vectorExp(w, w, q)
            for t in 0 ..< q {
                scale(w[t], bm + t * x.bStride, wb + t * N, N)
            }
            T.gemm(transposeA: true, transposeB: false, m: P, n: N, k: q, alpha: 1, a: xt, lda: P, b: wb, ldb: N,
                   beta: 0, c: ws.slot(ws.states, b, h, c + 1, chunks: chunks), ldc: N)
        }
    }

    /// Per (batch, head): the states along the chunks (slot c + 1 ← e^{Λ_last} slot c + slot
    /// c + 1), each chunk's inter-chunk output diag(e^Λ) C S_inᵀ and the skip D ⊙ x.
    @inline(__always)
    func statePhase(_ row: Int, worker: Int) {
        let s = scan.shape
        let (L, H, P, N, Q) = (s.length, s.heads, s.headDimension, s.state, scan.chunkLength)
        let chunks = scan.chunks
        let b = row / H, h = row % H, g = h / s.headsPerGroup
        let count = P * N
        let first = ws.slot(ws.states, b, h, 0, chunks: chunks)
        if let initial = x.initialStates { first.update(from: initial + row * count, count: count) } else { first.update(repeating: 0, count: count) }
        let z = ws.wide1[worker], e = ws.v1[worker]
        for c in 0 ..< chunks {
            let t0 = c * Q, q = scan.tokens(c)
            let lambda = ws.cumulative + row * L + t0
            let sIn = ws.slot(ws.states, b, h, c, chunks: chunks)
            let y = out + (b * L + t0) * outStride + h * P
            let xh = x.x + (b * L + t0) * x.xStride + h * P
            if c > 0 || x.initialStates != nil {
                // Z = C S_inᵀ (q × P); y += e^Λ ⊙ Z.
                T.gemm(transposeA: false, transposeB: true, m: q, n: P, k: N, alpha: 1, a: x.c + (b * L + t0) * x.cStride + g * N,
                       lda: x.cStride, b: sIn, ldb: N, beta: 0, c: z, ldc: P)
                T.vectorExp(lambda, e, q)
                for t in 0 ..< q { axpy(e[t], z + t * P, y + t * outStride, P) }
            }
            if let d = x.d {
                for t in 0 ..< q {
                    if x.dHasHeadDimension { multiplyAdd(d + h * P, xh + t * x.xStride, y + t * outStride, P) } else { axpy(d[h], xh + t * x.xStride, y + t * outStride, P) }
                }
            }
            // slot c + 1 holds the chunk's own state; add the decayed state entering it.
            let alpha = T.exp(lambda[q - 1])
            let sOut = ws.slot(ws.states, b, h, c + 1, chunks: chunks)
            for i in 0 ..< count { sOut[i] += alpha * sIn[i] }
        }
    }
}

extension SSDScan {
    /// 𝓛 (q × q, lower triangle; zeros above) from the chunk's Λ, and C Bᵀ ⊙ 𝓛.
    @inline(__always)
    func maskedDecay(_ lambda: UnsafePointer<T>, q: Int, cb: UnsafePointer<T>, decay: UnsafeMutablePointer<T>,
                     masked: UnsafeMutablePointer<T>, worker: Int, ws: SSDWorkspace<T>) {
        var largest: T = 0
        for t in 0 ..< q { largest = Swift.max(largest, Swift.abs(lambda[t])) }
        if largest <= Self.factoredLimit {
            // e^{Λ_t − Λ_s} = e^{Λ_t}·e^{−Λ_s}: 2q exponentials instead of q²/2.
            let e = ws.v2[worker], f = ws.v3[worker]
            T.vectorExp(lambda, e, q)
            for t in 0 ..< q { f[t] = -lambda[t] }
            T.vectorExp(f, f, q)
            for t in 0 ..< q {
                let row = decay + t * q
                for s in 0 ... t { row[s] = e[t] * f[s] }
            }
        } else {
            for t in 0 ..< q {
                let row = decay + t * q
                for s in 0 ... t { row[s] = lambda[t] - lambda[s] }
                T.vectorExp(row, row, t + 1)
            }
        }
        for t in 0 ..< q {
            let d = decay + t * q, m = masked + t * q, k = cb + t * q
            for s in 0 ... t { m[s] = k[s] * d[s] }
            if t + 1 < q {
                (d + t + 1).update(repeating: 0, count: q - t - 1)
                (m + t + 1).update(repeating: 0, count: q - t - 1)
            }
        }
    }
}
