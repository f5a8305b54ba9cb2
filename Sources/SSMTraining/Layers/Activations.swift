import SSMKit

/// GELU, the exact form: v·Φ(v) = v/2·(1 + erf(v/√2)).
@inlinable
func gelu<T: FFTScalar>(_ v: T) -> T { v / 2 * (1 + T.erf(v / T(2).squareRoot())) }

/// GELU′(v) = Φ(v) + v·φ(v).
@inlinable
func geluDerivative<T: FFTScalar>(_ v: T) -> T {
    let phi = T.exp(-v * v / 2) / (2 * T.pi).squareRoot()
    return (1 + T.erf(v / T(2).squareRoot())) / 2 + v * phi
}


/// Pointwise activations as forward/backward pairs on flat buffers. The loops split into
/// chunks over `threads` workers (elementwise, so the result does not depend on the split).
public enum Activation: String, Sendable, CaseIterable {
    case gelu, silu

    @inlinable
    public func value<T: FFTScalar>(_ v: T) -> T {
        switch self {
        case .gelu: SSMTraining.gelu(v)
        case .silu: SSMKit.silu(v)
        }
    }

    @inlinable
    public func derivative<T: FFTScalar>(_ v: T) -> T {
        switch self {
        case .gelu: geluDerivative(v)
        case .silu: siluDerivative(v)
        }
    }

    public func forward<T: FFTScalar>(_ x: [T], threads: Int = 1) -> [T] {
        var y = [T](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                let (px, py) = (SendableBox(x.baseAddress!), SendableBox(y.baseAddress!))
                forEachChunk(x.count, threads: threads) { range in for i in range { py.value[i] = value(px.value[i]) } }
            }
        }
        return y
    }

    /// f(x) and f′(x) in one pass, so that backward is one product (GELU shares erf and e^{−v²/2}
    /// between them: f = v·Φ(v), f′ = Φ(v) + v·φ(v)).
    public func forwardWithDerivative<T: FFTScalar>(_ x: [T], threads: Int = 1) -> (y: [T], derivative: [T]) {
        var y = [T](repeating: 0, count: x.count), d = y
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                d.withUnsafeMutableBufferPointer { d in
                    forwardWithDerivative(x.baseAddress!, y: y.baseAddress!, derivative: d.baseAddress!, count: x.count, threads: threads)
                }
            }
        }
        return (y, d)
    }

    /// ``forwardWithDerivative(_:threads:)`` into the caller's buffers of `count` values.
    public func forwardWithDerivative<T: FFTScalar>(_ x: UnsafePointer<T>, y: UnsafeMutablePointer<T>, derivative: UnsafeMutablePointer<T>,
                                                    count: Int, threads: Int = 1) {
        WorkerPool.forEachInParallel(chunkCount(count), threads: threads, (SendableBox(x), SendableBox(y), SendableBox(derivative), self, count)) {
            context, chunk, _ in
            let (px, py, pd, activation, count) = context
            let range = chunkRange(chunk, count)
            switch activation {
            case .gelu:
                let lo = range.lowerBound
                geluWithDerivative(px.value + lo, py.value + lo, pd.value + lo, count: range.count)
            case .silu:
                for i in range {
                    let v = px.value[i], s = sigmoid(v)
                    py.value[i] = v * s
                    pd.value[i] = s * (1 + v * (1 - s))
                }
            }
        }
    }

    /// dX += dY ⊙ f′(x).
    public func backward<T: FFTScalar>(dY: [T], x: [T], dX: inout [T], threads: Int = 1) {
        precondition(dY.count == x.count && dX.count == x.count, "Activation.backward: counts")
        dY.withUnsafeBufferPointer { dY in
            x.withUnsafeBufferPointer { x in
                dX.withUnsafeMutableBufferPointer { dX in
                    let (pdY, px, pdX) = (SendableBox(dY.baseAddress!), SendableBox(x.baseAddress!), SendableBox(dX.baseAddress!))
                    forEachChunk(x.count, threads: threads) { range in
                        for i in range { pdX.value[i] += pdY.value[i] * derivative(px.value[i]) }
                    }
                }
            }
        }
    }
}

/// The gated linear unit over an axis of size 2n (PyTorch `nn.GLU(dim)`): x: (blocks, 2, n) →
/// y: (blocks, n), y = a ⊙ σ(g) with a the first half and g the second.
public enum GLU {
    public static func forward<T: FFTScalar>(_ x: [T], blocks: Int, half n: Int, threads: Int = 1) -> [T] {
        precondition(x.count == blocks * 2 * n, "GLU: counts")
        var y = [T](repeating: 0, count: blocks * n)
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                let (px, py) = (SendableBox(x.baseAddress!), SendableBox(y.baseAddress!))
                forEachChunk(blocks * n, threads: threads) { range in
                    var (b, i) = range.lowerBound.quotientAndRemainder(dividingBy: n)
                    for j in range {
                        py.value[j] = px.value[b * 2 * n + i] * sigmoid(px.value[b * 2 * n + n + i])
                        i += 1
                        if i == n { (b, i) = (b + 1, 0) }
                    }
                }
            }
        }
        return y
    }

    /// ``forward(_:blocks:half:threads:)`` that also returns the gate σ(g): (blocks, n), for
    /// ``backward(dY:x:gate:blocks:half:dX:threads:)``. σ goes through the vectorized exponential.
    public static func forwardWithGate<T: FFTScalar>(_ x: [T], blocks: Int, half n: Int, threads: Int = 1) -> (y: [T], gate: [T]) {
        precondition(x.count == blocks * 2 * n, "GLU: counts")
        var y = [T](repeating: 0, count: blocks * n), gate = y
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                gate.withUnsafeMutableBufferPointer { gate in
                    forwardWithGate(x.baseAddress!, y: y.baseAddress!, gate: gate.baseAddress!, blocks: blocks, half: n, threads: threads)
                }
            }
        }
        return (y, gate)
    }

    /// ``forwardWithGate(_:blocks:half:threads:)`` into the caller's buffers. With `residual`
    /// ((blocks, n), not overlapping y), y = residual + a ⊙ σ(g): a residual connection added in
    /// the same pass, with the bits of a separate addition.
    public static func forwardWithGate<T: FFTScalar>(_ x: UnsafePointer<T>, residual: UnsafePointer<T>? = nil, y: UnsafeMutablePointer<T>,
                                                     gate: UnsafeMutablePointer<T>, blocks: Int, half n: Int, threads: Int = 1) {
        let pointers = (SendableBox(x), residual.map { SendableBox($0) }, SendableBox(y), SendableBox(gate))
        WorkerPool.forEachInParallel(chunkCount(blocks * n), threads: threads, (pointers, n, blocks * n)) { context, chunk, _ in
            let ((px, pr, py, pg), n, count) = context
            let range = chunkRange(chunk, count)
            forEachSegment(range, half: n) { b, i, j, count in
                gluForward(px.value + b * 2 * n + i, px.value + b * 2 * n + n + i, residual: pr.map { $0.value + j }, y: py.value + j,
                           gate: pg.value + j, count: count)
            }
        }
    }

    /// The backward pass with the gate σ(g) kept by ``forwardWithGate(_:blocks:half:threads:)``.
    public static func backward<T: FFTScalar>(dY: [T], x: [T], gate: [T], blocks: Int, half n: Int, dX: inout [T], threads: Int = 1) {
        precondition(dY.count == blocks * n && x.count == blocks * 2 * n && gate.count == blocks * n && dX.count == x.count,
                     "GLU.backward: counts")
        dY.withUnsafeBufferPointer { dY in
            x.withUnsafeBufferPointer { x in
                gate.withUnsafeBufferPointer { gate in
                    dX.withUnsafeMutableBufferPointer { dX in
                        backward(dY: dY.baseAddress!, x: x.baseAddress!, gate: gate.baseAddress!, blocks: blocks, half: n,
                                 dX: dX.baseAddress!, accumulate: true, threads: threads)
                    }
                }
            }
        }
    }

    /// The same on the caller's buffers; `accumulate: false` overwrites dX instead of adding.
    public static func backward<T: FFTScalar>(dY: UnsafePointer<T>, x: UnsafePointer<T>, gate: UnsafePointer<T>, blocks: Int, half n: Int,
                                              dX: UnsafeMutablePointer<T>, accumulate: Bool, threads: Int = 1) {
        let pointers = (SendableBox(dY), SendableBox(x), SendableBox(gate), SendableBox(dX))
        WorkerPool.forEachInParallel(chunkCount(blocks * n), threads: threads, (pointers, n, accumulate, blocks * n)) { context, chunk, _ in
            let ((pdY, px, pg, pdX), n, accumulate, count) = context
            let range = chunkRange(chunk, count)
            forEachSegment(range, half: n) { b, i, j, count in
                let (a, s, d) = (px.value + b * 2 * n + i, pg.value + j, pdY.value + j)
                gluBackward(dY: d, a: a, gate: s, dA: pdX.value + b * 2 * n + i, dG: pdX.value + b * 2 * n + n + i, count: count,
                            accumulate: accumulate)
            }
        }
    }

    /// dA += dY ⊙ σ(g);  dG += dY ⊙ a ⊙ σ(g)(1 − σ(g)).
    public static func backward<T: FFTScalar>(dY: [T], x: [T], blocks: Int, half n: Int, dX: inout [T], threads: Int = 1) {
        precondition(dY.count == blocks * n && x.count == blocks * 2 * n && dX.count == x.count, "GLU.backward: counts")
        dY.withUnsafeBufferPointer { dY in
            x.withUnsafeBufferPointer { x in
                dX.withUnsafeMutableBufferPointer { dX in
                    let (pdY, px, pdX) = (SendableBox(dY.baseAddress!), SendableBox(x.baseAddress!), SendableBox(dX.baseAddress!))
                    forEachChunk(blocks * n, threads: threads) { range in
                        var (b, i) = range.lowerBound.quotientAndRemainder(dividingBy: n)
                        for j in range {
                            let (a, g) = (px.value[b * 2 * n + i], px.value[b * 2 * n + n + i])
                            let s = sigmoid(g), d = pdY.value[j]
                            pdX.value[b * 2 * n + i] += d * s
                            pdX.value[b * 2 * n + n + i] += d * a * s * (1 - s)
                            i += 1
                            if i == n { (b, i) = (b + 1, 0) }
                        }
                    }
                }
            }
        }
    }
}

/// Splits `range` of the (blocks, n) outputs of a GLU at block boundaries: body(b, i, j, count)
/// for each piece, j its first output index and i = j mod n, so that every piece is
/// contiguous in the outputs and in both halves of the input.
@inline(__always)
func forEachSegment(_ range: Range<Int>, half n: Int, _ body: (Int, Int, Int, Int) -> Void) {
    var j = range.lowerBound
    while j < range.upperBound {
        let (b, i) = j.quotientAndRemainder(dividingBy: n)
        let end = min(range.upperBound, (b + 1) * n)
        body(b, i, j, end - j)
        j = end
    }
}

/// Calls `body` on consecutive ranges covering 0 ..< count (chunks of 2^14) on up to `threads`
/// workers.
func forEachChunk(_ count: Int, threads: Int, _ body: @escaping @Sendable (Range<Int>) -> Void) {
    let chunk = 1 << 14
    let chunks = (count + chunk - 1) / chunk
    guard chunks > 0 else { return }
    if chunks == 1 || threads <= 1 { body(0 ..< count); return }
    WorkerPool.forEachInParallel(chunks, threads: threads) { i, _ in body(i * chunk ..< min(count, (i + 1) * chunk)) }
}

/// y = silu(x) = x / (1 + e^{−x}) for `count` values (y may not alias x). Float takes the
/// vectorized exponential (`FFTScalar/vectorExp(_:_:_:)`); Double keeps the C library's, so
/// that float64 runs repeat their results bit for bit across versions.
func siluRow<T: FFTScalar>(_ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, count: Int) {
    guard T.self == Float.self else {
        for t in 0 ..< count { y[t] = silu(x[t]) }
        return
    }
    for t in 0 ..< count { y[t] = -x[t] }
    T.vectorExp(y, y, count)
    for t in 0 ..< count { y[t] = x[t] / (1 + y[t]) }
}

/// d ⊙= silu′(x) = σ·(1 + x·(1 − σ)), σ = 1/(1 + e^{−x}), for `count` values; `scratch` holds
/// `count` values (overwritten). Float and Double as in ``siluRow(_:into:count:)``.
func multiplySiluDerivative<T: FFTScalar>(_ d: UnsafeMutablePointer<T>, _ x: UnsafePointer<T>, scratch: UnsafeMutablePointer<T>,
                                          count: Int) {
    guard T.self == Float.self else {
        for t in 0 ..< count { d[t] *= siluDerivative(x[t]) }
        return
    }
    for t in 0 ..< count { scratch[t] = -x[t] }
    T.vectorExp(scratch, scratch, count)
    for t in 0 ..< count {
        let s = 1 / (1 + scratch[t])
        d[t] *= s * (1 + x[t] * (1 - s))
    }
}

/// Elementwise sums and products of whole buffers, in chunks of 2^14 on the worker pool
/// (allocation-free). The output may be one of the inputs.
enum Elementwise {
    /// y = a + b.
    static func add<T: FFTScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, count: Int, threads: Int) {
        WorkerPool.forEachInParallel(chunkCount(count), threads: threads, (SendableBox(a), SendableBox(b), SendableBox(y), count)) {
            context, chunk, _ in
            let (a, b, y, count) = context
            for i in chunkRange(chunk, count) { y.value[i] = a.value[i] + b.value[i] }
        }
    }

    /// y = a ⊙ b.
    static func multiply<T: FFTScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, count: Int,
                                       threads: Int) {
        WorkerPool.forEachInParallel(chunkCount(count), threads: threads, (SendableBox(a), SendableBox(b), SendableBox(y), count)) {
            context, chunk, _ in
            let (a, b, y, count) = context
            for i in chunkRange(chunk, count) { y.value[i] = a.value[i] * b.value[i] }
        }
    }
}

/// The number of chunks of 2^14 values (those of ``forEachChunk(_:threads:_:)``) that cover
/// 0 ..< count, and chunk i: for the loops that allocate nothing, which run chunk by chunk on
/// a context (a closure carried inside the context would be re-wrapped, and allocated, on
/// every call).
func chunkCount(_ count: Int) -> Int { (count + (1 << 14) - 1) >> 14 }

func chunkRange(_ i: Int, _ count: Int) -> Range<Int> { (i << 14) ..< Swift.min(count, (i + 1) << 14) }

/// Inverted dropout (PyTorch `nn.Dropout(p)` in training mode): each value kept with
/// probability 1 − p and scaled by 1/(1 − p). The mask comes from a seed, so a step repeats
/// exactly (and a resumed run draws the same masks); in evaluation dropout is the identity.
public enum Dropout {
    /// The mask: 0 or 1/(1 − p) per value. p = 0 gives all ones.
    public static func mask<T: FFTScalar>(count: Int, probability p: Double, seed: UInt64) -> [T] {
        precondition(p >= 0 && p < 1, "Dropout: probability \(p) outside [0, 1)")
        var mask = [T](repeating: 1, count: count)
        mask.withUnsafeMutableBufferPointer { m in if let base = m.baseAddress { fillMask(base, count: count, probability: p, seed: seed) } }
        return mask
    }

    /// ``mask(count:probability:seed:)`` into the caller's buffer (the same draws).
    public static func fillMask<T: FFTScalar>(_ mask: UnsafeMutablePointer<T>, count: Int, probability p: Double, seed: UInt64) {
        precondition(p >= 0 && p < 1, "Dropout: probability \(p) outside [0, 1)")
        if p == 0 { mask.update(repeating: 1, count: count); return }
        var rng = SplitMix64(seed: seed)
        let keep = T(1 / (1 - p))
        for i in 0 ..< count { mask[i] = Double.random(in: 0 ..< 1, using: &rng) < p ? 0 : keep }
    }

    @inlinable
    public static func forward<T: FFTScalar>(_ x: [T], mask: [T]) -> [T] {
        precondition(x.count == mask.count, "Dropout: counts")
        return zip(x, mask).map { $0 * $1 }
    }

    /// dX += dY ⊙ mask.
    @inlinable
    public static func backward<T: FFTScalar>(dY: [T], mask: [T], dX: inout [T]) {
        precondition(dY.count == mask.count && dX.count == mask.count, "Dropout.backward: counts")
        for i in dY.indices { dX[i] += dY[i] * mask[i] }
    }
}

/// Token embedding (PyTorch `nn.Embedding(V, C)`): tokens (R) → rows (R, C) of W: (V, C).
public enum Embedding {
    /// - Throws: `SSMError` naming `tokens` when a token is outside 0 ..< V.
    public static func forward<T: FFTScalar>(_ tokens: [Int], weight w: [T], vocabulary V: Int, channels C: Int) throws(SSMError) -> [T] {
        precondition(w.count == V * C, "Embedding: counts")
        var y = [T](repeating: 0, count: tokens.count * C)
        for (r, token) in tokens.enumerated() {
            guard token >= 0, token < V else { throw SSMError.value(argument: "tokens", expected: "values in 0 ..< \(V), got \(token)") }
            for c in 0 ..< C { y[r * C + c] = w[token * C + c] }
        }
        return y
    }

    /// dW[token] += dY row (tokens already checked by forward).
    public static func backward<T: FFTScalar>(dY: [T], tokens: [Int], channels C: Int, dWeight: inout [T]) {
        precondition(dY.count == tokens.count * C, "Embedding.backward: counts")
        for (r, token) in tokens.enumerated() {
            for c in 0 ..< C { dWeight[token * C + c] += dY[r * C + c] }
        }
    }
}

/// Pooling over the length axis of x: (B, L, C) → (B, C).
public enum Pooling: String, Sendable, CaseIterable {
    /// The mean over the L positions (the official S4 example's classifier).
    case mean
    /// The last position (for causal models that must read the whole sequence first).
    case last

    @inlinable
    public func forward<T: FFTScalar>(_ x: [T], batch B: Int, length L: Int, channels C: Int) -> [T] {
        precondition(x.count == B * L * C, "Pooling: counts")
        var y = [T](repeating: 0, count: B * C)
        for b in 0 ..< B {
            switch self {
            case .mean:
                for t in 0 ..< L { for c in 0 ..< C { y[b * C + c] += x[(b * L + t) * C + c] } }
                for c in 0 ..< C { y[b * C + c] /= T(L) }
            case .last:
                for c in 0 ..< C { y[b * C + c] = x[(b * L + L - 1) * C + c] }
            }
        }
        return y
    }

    /// dX += ∂pool/∂x · dY.
    @inlinable
    public func backward<T: FFTScalar>(dY: [T], batch B: Int, length L: Int, channels C: Int, dX: inout [T]) {
        precondition(dY.count == B * C && dX.count == B * L * C, "Pooling.backward: counts")
        for b in 0 ..< B {
            switch self {
            case .mean:
                for t in 0 ..< L { for c in 0 ..< C { dX[(b * L + t) * C + c] += dY[b * C + c] / T(L) } }
            case .last:
                for c in 0 ..< C { dX[(b * L + L - 1) * C + c] += dY[b * C + c] }
            }
        }
    }
}
