import ComplexModule
import RealModule

/// The S4D convolution kernel by Vandermonde evaluation (official `S4DKernel`, s4d.py).
///
/// Legend: H channels · N2 = N/2 complex modes (one of each conjugate pair) · L length.
///
/// Parameters (row-major, complex values as `Complex<T>`):
/// - `logDt: (H)`: Δ_h = exp(logDt[h])
/// - `c: c(H, N2)`: output projection C
/// - `logAReal: (H, N2)`, `aImag: (H, N2)`: λ = −exp(logAReal) + i·aImag
/// - `b: c(H, N2)` or nil (B = 1)
///
///     K̄[h, l] = 2·Re Σ_n C_n B_n β_n Ā_n^l,   l = 0 … L − 1
///
/// with Ā, β of ``Discretization`` (ZOH: β = (e^{Δλ} − 1)/λ; bilinear: β = Δ/(1 − Δλ/2)).
///
/// Precision: each mode (Δ, λ, Ā, β and log Ā) is computed in Double from the parameters,
/// whatever T is, because the phase of Ā^l = e^{l·log Ā} carries the error of log Ā
/// multiplied by l: log Ā computed in Float would be off by up to l·2^-24·|Δλ|, ~6e-3 at
/// l = 2^20. Powers are re-anchored: every ``anchorInterval`` steps Ā^l is recomputed as
/// e^{l·log Ā} in Double, and the steps in between are complex multiplications in T. The
/// error of a power is then ~``anchorInterval`` roundings of T at any L (repeated
/// multiplication alone would grow it linearly in L: ~6e-2 relative in Float at L = 2^20).
/// Anchors are taken 16 blocks at a time from one exact exponential (``AnchorPowers``), a few
/// more roundings of Double. Work: O(N2·L) multiply-adds and O(N2·L/(16·``anchorInterval``))
/// complex exponentials per channel;
/// memory O(L) per channel (no (H, N2, L) tensor).
public struct S4DKernel<T: FFTScalar>: Sendable {
    public var channels: Int
    public var modes: Int
    public var discretization: Discretization
    /// Worker threads per call (channels run in parallel).
    public var threads: Int

    /// Steps between exact re-anchorings of the powers Ā^l: 1 computes every power as an exact
    /// exponential. 64 by measurement (README, Performance): as accurate as exact exponentials
    /// in Float, and many times faster.
    public var anchorInterval: Int

    public static var defaultAnchorInterval: Int { 64 }

    public init(channels: Int, modes: Int, discretization: Discretization = .zoh, threads: Int? = nil,
                anchorInterval: Int = S4DKernel.defaultAnchorInterval) throws(SSMError) {
        guard channels >= 1 else { throw SSMError.value(argument: "channels", expected: "a positive count, got \(channels)") }
        guard modes >= 1 else { throw SSMError.value(argument: "modes", expected: "a positive count, got \(modes)") }
        guard anchorInterval >= 1 else { throw SSMError.value(argument: "anchorInterval", expected: "a positive step count, got \(anchorInterval)") }
        self.anchorInterval = anchorInterval
        self.channels = channels
        self.modes = modes
        self.discretization = discretization
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
    }

    /// Checks parameter counts: `logDt` H, the others H·N2.
    @usableFromInline
    func check(logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], b: [Complex<T>]?) throws(SSMError) {
        let (H, N2) = (channels, modes)
        if logDt.count != H { throw SSMError.shape(argument: "log_dt", expected: "(H) = (\(H))", actual: [logDt.count]) }
        if c.count != H * N2 { throw SSMError.shape(argument: "C", expected: "(H, N2) = (\(H), \(N2)) complex", actual: [c.count]) }
        if logAReal.count != H * N2 { throw SSMError.shape(argument: "log_A_real", expected: "(H, N2) = (\(H), \(N2))", actual: [logAReal.count]) }
        if aImag.count != H * N2 { throw SSMError.shape(argument: "A_imag", expected: "(H, N2) = (\(H), \(N2))", actual: [aImag.count]) }
        if let b, b.count != H * N2 { throw SSMError.shape(argument: "B", expected: "(H, N2) = (\(H), \(N2)) complex", actual: [b.count]) }
        try checkFinite(logDt, "log_dt"); try checkFinite(c, "C"); try checkFinite(logAReal, "log_A_real"); try checkFinite(aImag, "A_imag")
        if let b { try checkFinite(b, "B") }
    }

    /// The discretized mode (h, n), in Double.
    @inlinable @inline(__always)
    func mode(_ h: Int, _ n: Int, logDt: [T], logAReal: [T], aImag: [T]) -> (delta: Double, lambda: Complex<Double>, DiscreteMode<Double>) {
        let delta = Double.exp(Double(logDt[h]))
        let lambda = Complex(-Double.exp(Double(logAReal[h * modes + n])), Double(aImag[h * modes + n]))
        return (delta, lambda, DiscreteMode(discretization, delta: delta, lambda: lambda))
    }

    /// K̄: (H, L), overwriting `k`.
    /// - Throws: ``SSMError`` for wrong parameter counts, a NaN or infinity in a parameter,
    ///   `length` < 1, or finite parameters whose kernel overflows `T`.
    @inlinable
    public func forward(length L: Int, logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T],
                        b: [Complex<T>]? = nil, k: inout [T]) throws(SSMError) {
        try check(logDt: logDt, c: c, logAReal: logAReal, aImag: aImag, b: b)
        guard L >= 1 else { throw SSMError.value(argument: "length", expected: "L ≥ 1, got \(L)") }
        if k.count != channels * L { throw SSMError.shape(argument: "k", expected: "(H, L) = (\(channels), \(L))", actual: [k.count]) }
        k.withUnsafeMutableBufferPointer { k in
            // Channels in parallel on the worker pool, each writing its own row.
            let rows = KernelRows(kernel: self, k: k.baseAddress!, length: L, logDt: logDt, c: c, logAReal: logAReal, aImag: aImag, b: b)
            WorkerPool.forEachInParallel(channels, threads: threads, rows) { rows, h, _ in rows.run(h) }
        }
        guard allFinite(k) else {
            throw SSMError.value(argument: "log_dt, C, log_A_real, A_imag, B", expected: "parameters whose kernel is finite in \(T.self) (it overflowed)")
        }
    }

    /// One channel's row of K̄ per task.
    @usableFromInline
    struct KernelRows {
        @usableFromInline let kernel: S4DKernel
        @usableFromInline let k: UnsafeMutablePointer<T>
        @usableFromInline let length: Int
        @usableFromInline let logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], b: [Complex<T>]?

        @inlinable
        init(kernel: S4DKernel, k: UnsafeMutablePointer<T>, length: Int, logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T],
             b: [Complex<T>]?) {
            (self.kernel, self.k, self.length, self.logDt, self.c, self.logAReal, self.aImag, self.b) = (kernel, k, length, logDt, c, logAReal, aImag, b)
        }

        @inlinable
        func run(_ h: Int) {
            let (L, modes) = (length, kernel.modes)
            let row = k + h * L
            row.update(repeating: 0, count: L)
            for n in 0 ..< modes {
                let (_, _, m) = kernel.mode(h, n, logDt: logDt, logAReal: logAReal, aImag: aImag)
                let w = complexDouble(c[h * modes + n]) * complexDouble(b?[h * modes + n] ?? Complex(1)) * m.bBarScale
                kernel.accumulateVandermonde(row, length: L, weight: w, mode: m)
            }
        }
    }

    /// row[l] += 2·Re(w·Ā^l) for l in 0 ..< L.
    ///
    /// Blocks of ``anchorInterval`` steps start from an exact power in Double; inside a block,
    /// eight lanes hold w·Ā^{l0+j}, j = 0 … 7, and all advance by Ā^8 per vector step, so the
    /// loop carries eight independent dependency chains and vectorizes over l.
    @inlinable
    func accumulateVandermonde(_ row: UnsafeMutablePointer<T>, length L: Int, weight w: Complex<Double>,
                               mode m: DiscreteMode<Double>) {
        let interval = anchorInterval
        // Ā^j for the lanes and Ā^8 for the step, rounded once from Double.
        var laneRe = SIMD8<T>(), laneIm = SIMD8<T>()
        var power = Complex<Double>(1)
        for j in 0 ..< 8 {
            laneRe[j] = T(power.real); laneIm[j] = T(power.imaginary)
            power = power * m.aBar
        }
        let stepRe = SIMD8<T>(repeating: T(power.real)), stepIm = SIMD8<T>(repeating: T(power.imaginary))
        let raw = UnsafeMutableRawPointer(row)
        var anchors = AnchorPowers(logZ: m.logABar, interval: interval)
        var l0 = 0
        while l0 < L {
            let anchor = w * anchors.next()
            let (ar, ai) = (T(anchor.real), T(anchor.imaginary))
            // p = anchor · Ā^j per lane, doubled (K̄ = 2·Re).
            var pRe = (laneRe * ar - laneIm * ai) * 2
            var pIm = (laneRe * ai + laneIm * ar) * 2
            let end = min(L, l0 + interval)
            var l = l0
            while l + 8 <= end {
                let offset = l * MemoryLayout<T>.stride
                raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: offset, as: SIMD8<T>.self) + pRe,
                               toByteOffset: offset, as: SIMD8<T>.self)
                (pRe, pIm) = (pRe * stepRe - pIm * stepIm, pRe * stepIm + pIm * stepRe)
                l += 8
            }
            for j in 0 ..< end - l { row[l + j] += pRe[j] }
            l0 = end
        }
    }
}

/// The anchors z^0, z^d, z^{2d}, … of a Vandermonde sum with blocks of d steps, in Double.
///
/// Every ``superBlocks`` anchors one is an exact exponential (``anchoredPower(_:_:)``); the
/// ones between are that anchor times z^{jd}, j < ``superBlocks``, a running product of the
/// exact z^d. An anchor is thus at most ``superBlocks`` + 2 Double roundings away from the exact
/// power, at any l, and the exponentials (with their sine and cosine) drop from one per block
/// to one per ``superBlocks`` blocks.
@usableFromInline
struct AnchorPowers {
    @usableFromInline static var superBlocks: Int { 16 }
    @usableFromInline let logZ: Complex<Double>, interval: Int, step: Complex<Double>
    @usableFromInline var block = 0, exact = Complex<Double>(1), offset = Complex<Double>(1)

    @inlinable
    init(logZ: Complex<Double>, interval: Int) {
        (self.logZ, self.interval) = (logZ, interval)
        step = anchoredPower(logZ, interval)
    }

    /// z^{block·d} for the next block (the first call gives z^0 = 1).
    @inlinable
    mutating func next() -> Complex<Double> {
        if block % Self.superBlocks == 0 {
            (exact, offset) = (anchoredPower(logZ, block * interval), Complex(1))
        } else {
            offset = offset * step
        }
        block += 1
        return exact * offset
    }
}

/// z^l = e^{l·log z} in Double, with the product l·log z carried exactly.
///
/// Rounding l·log z to a Double would cost half an ulp of the product: at l = 2^22 and a phase
/// of a few radians per step, 1e-9 radians, a relative error a million times Double's
/// precision. Each part is instead split by a fused multiply-add into its rounded product p and
/// the product's exact remainder e, and e^{p + e} ≈ e^p·(1 + e), cos(p + e) ≈ cos p − e·sin p
/// and sin(p + e) ≈ sin p + e·cos p are taken to first order in e (|e| ≤ ulp(p)/2, so the terms
/// dropped are below Double's rounding). The power is then as accurate as log z itself. Where
/// the product is not finite (a power that underflows to 0), the plain exponential is used.
@inlinable
func anchoredPower(_ logZ: Complex<Double>, _ l: Int) -> Complex<Double> {
    guard l != 0 else { return Complex(1) }
    let n = Double(l)
    let re = n * logZ.real, im = n * logZ.imaginary
    guard re.isFinite, im.isFinite else { return Complex.exp(logZ.multiplied(by: n)) }
    let reRemainder = (-re).addingProduct(n, logZ.real), imRemainder = (-im).addingProduct(n, logZ.imaginary)
    let magnitude = Double.exp(re) * (1 + reRemainder), (c, s) = (Double.cos(im), Double.sin(im))
    return Complex(magnitude * (c - imRemainder * s), magnitude * (s + imRemainder * c))
}

@inlinable @inline(__always)
func complexDouble<T: BinaryFloatingPoint>(_ z: Complex<T>) -> Complex<Double> {
    Complex(Double(z.real), Double(z.imaginary))
}

@inlinable @inline(__always)
func complexT<T: BinaryFloatingPoint>(_ z: Complex<Double>, _: T.Type) -> Complex<T> {
    Complex(T(z.real), T(z.imaginary))
}
