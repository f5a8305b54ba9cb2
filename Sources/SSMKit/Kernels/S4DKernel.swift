import CSSMKitKernels
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
/// l = 2^20. Powers are re-anchored: every ``anchorInterval`` steps Ā^l is recomputed in
/// Double (every 16th anchor as e^{l·log Ā}, the ones between as that anchor times a running
/// product of the exact Ā^anchorInterval: within 18 roundings of Double), and the steps in
/// between are complex multiplications in T. The error of a power is then ~``anchorInterval``/16
/// roundings of T at any L (16 lanes advance together; repeated multiplication alone would grow
/// it linearly in L: ~6e-2 relative in Float at L = 2^20). The loops are the C kernels of
/// `CSSMKitKernels/vandermonde.c`. Work: O(N2·L) multiply-adds and O(N2·L/(16·``anchorInterval``))
/// complex exponentials per channel;
/// memory O(L) per channel (no (H, N2, L) tensor).
public struct S4DKernel<T: FFTScalar>: Sendable {
    public var channels: Int
    public var modes: Int
    public var discretization: Discretization
    /// Worker threads per call (channels run in parallel).
    public var threads: Int

    /// Steps between re-anchorings of the powers Ā^l in Double (every 16th anchor an exact
    /// exponential, the ones between products of the exact Ā^anchorInterval): 1 computes every
    /// power in Double. 64 by measurement (Performance): in Float within 2× of the error of
    /// every power in Double, and 9× faster.
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

    /// row[l] += 2·Re(w·Ā^l) for l in 0 ..< L, on the C kernel `ssm_vandermonde_f32`/`_f64`:
    /// blocks of ``anchorInterval`` steps start from an anchor power in Double (an exact
    /// exponential every 16 blocks, products of Ā^interval between); inside a block sixteen
    /// lanes hold w·Ā^{l0+j}, j = 0 … 15, and all advance by Ā^16 per vector step in T, so the
    /// loop carries sixteen independent dependency chains and vectorizes over l.
    @inlinable
    func accumulateVandermonde(_ row: UnsafeMutablePointer<T>, length L: Int, weight w: Complex<Double>,
                               mode m: DiscreteMode<Double>) {
        vandermonde(row, length: L, weight: w, z: m.aBar, logZ: m.logABar, interval: anchorInterval)
    }
}

/// z^l = e^{l·log z} in Double, with the product l·log z carried exactly (`ssm_anchored_power`).
///
/// Rounding l·log z to a Double would cost half an ulp of the product: at l = 2^22 and a phase
/// of a few radians per step, 1e-9 radians, a relative error a million times Double's
/// precision. Each part is instead split by a fused multiply-add into its rounded product p and
/// the product's exact remainder e, and e^{p + e} ≈ e^p·(1 + e), cos(p + e) ≈ cos p − e·sin p
/// and sin(p + e) ≈ sin p + e·cos p are taken to first order in e (|e| ≤ ulp(p)/2, so the terms
/// dropped are below Double's rounding). The power is then as accurate as log z itself. Where
/// the product is not finite (a power that underflows to 0), the plain exponential is used.
func anchoredPower(_ logZ: Complex<Double>, _ l: Int) -> Complex<Double> {
    var (re, im) = (0.0, 0.0)
    ssm_anchored_power(logZ.real, logZ.imaginary, l, &re, &im)
    return Complex(re, im)
}

/// row[l] += 2·Re(w·z^l), l < L (`ssm_vandermonde_f32`/`_f64`).
@usableFromInline
func vandermonde<T: FFTScalar>(_ row: UnsafeMutablePointer<T>, length L: Int, weight w: Complex<Double>, z: Complex<Double>,
                               logZ: Complex<Double>, interval: Int) {
    if T.self == Float.self {
        ssm_vandermonde_f32(UnsafeMutableRawPointer(row).assumingMemoryBound(to: Float.self), L, w.real, w.imaginary, z.real, z.imaginary,
                            logZ.real, logZ.imaginary, interval)
    } else {
        precondition(T.self == Double.self, "vandermonde: Float or Double")
        ssm_vandermonde_f64(UnsafeMutableRawPointer(row).assumingMemoryBound(to: Double.self), L, w.real, w.imaginary, z.real, z.imaginary,
                            logZ.real, logZ.imaginary, interval)
    }
}

/// G = Σ_l dK[l]·z^l and G' = Σ_{l<L−1} dK[l+1]·(l+1)·z^l (`ssm_vandermonde_adjoint_f32`/`_f64`).
@usableFromInline
func vandermondeAdjoint<T: FFTScalar>(_ dK: UnsafePointer<T>, length L: Int, z: Complex<Double>, logZ: Complex<Double>,
                                      interval: Int) -> (Complex<Double>, Complex<Double>) {
    var out = (0.0, 0.0, 0.0, 0.0)
    withUnsafeMutableBytes(of: &out) { raw in
        let o = raw.baseAddress!.assumingMemoryBound(to: Double.self)
        if T.self == Float.self {
            ssm_vandermonde_adjoint_f32(UnsafeRawPointer(dK).assumingMemoryBound(to: Float.self), L, z.real, z.imaginary, logZ.real,
                                        logZ.imaginary, interval, o)
        } else {
            precondition(T.self == Double.self, "vandermondeAdjoint: Float or Double")
            ssm_vandermonde_adjoint_f64(UnsafeRawPointer(dK).assumingMemoryBound(to: Double.self), L, z.real, z.imaginary, logZ.real,
                                        logZ.imaginary, interval, o)
        }
    }
    return (Complex(out.0, out.1), Complex(out.2, out.3))
}

@inlinable @inline(__always)
func complexDouble<T: BinaryFloatingPoint>(_ z: Complex<T>) -> Complex<Double> {
    Complex(Double(z.real), Double(z.imaginary))
}

@inlinable @inline(__always)
func complexT<T: BinaryFloatingPoint>(_ z: Complex<Double>, _: T.Type) -> Complex<T> {
    Complex(T(z.real), T(z.imaginary))
}
