import CSSMKitKernels
import ComplexModule
import RealModule

/// The S4 (DPLR) convolution kernel by Cauchy sums and the Woodbury identity (official
/// `SSMKernelDPLR`, s4.py), as the `s4-kernel` operation of the ssm eval contract (EvalContract.md).
///
/// Legend: C output copies · H channels · S SSMs (channel h uses SSM h mod S) · N2 modes ·
/// R rank · L length.
///
/// Parameters: `invDt: (H)` (Δ = exp), `aReal, aImag: (S, N2)` (λ = −exp(aReal) − i·aImag),
/// `b: c(S, N2)`, `p: c(R, S, N2)` (Q = conj P), `cTilde: c(C, H, N2)` (C̃, attuned to L).
///
/// For the roots of unity ω_j = e^{−2πij/L}, j = 0 … ⌊L/2⌋, and g = (2/Δ)(1 − ω)/(1 + ω):
///
///     r_ab(ω) = Σ_n [ a_n b_n / (g − λ_n) + conj(a_n b_n) / (g − conj λ_n) ],
///               a ∈ {C̃, Q_1 … Q_R}, b ∈ {B, P_1 … P_R}
///     K̂(ω)    = 2/(1 + ω) · [ r_C̃B − r_C̃P (I_R + r_QP)⁻¹ r_QB ]
///     K̄       = irfft(K̂, L)
///
/// At ω = −1 (even L) g is infinite; the limit is K̂ = Δ·Re Σ_n C̃_n B_n (the Woodbury term
/// vanishes as 1/g). The sums run in Double, whatever T is; the inverse FFT in T.
/// Work: O((1 + R)²·N2) per node and (c, h), O(N2 + L) memory per channel.
public struct S4Kernel<T: FFTScalar>: Sendable {
    public var copies: Int
    public var channels: Int
    public var ssms: Int
    public var modes: Int
    public var rank: Int
    /// Worker threads per call ((copy, channel) rows run in parallel).
    public var threads: Int
    /// The planner effort of the inverse FFT (nil: ``FFT/defaultEffort``).
    public var effort: FFTPlannerEffort?

    public init(copies: Int, channels: Int, ssms: Int, modes: Int, rank: Int, threads: Int? = nil,
                effort: FFTPlannerEffort? = nil) throws(SSMError) {
        for (name, v) in [("copies", copies), ("channels", channels), ("ssms", ssms), ("modes", modes), ("rank", rank)] where v < 1 {
            throw SSMError.value(argument: name, expected: "a positive count, got \(v)")
        }
        guard channels % ssms == 0 else {
            throw SSMError.value(argument: "channels", expected: "a multiple of the SSM count S = \(ssms), got H = \(channels)")
        }
        (self.copies, self.channels, self.ssms, self.modes, self.rank) = (copies, channels, ssms, modes, rank)
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        self.effort = effort
    }

    @usableFromInline
    func check(invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>]?, p: [Complex<T>], cTilde: [Complex<T>]) throws(SSMError) {
        let (S, N2) = (ssms, modes)
        if invDt.count != channels { throw SSMError.shape(argument: "inv_dt", expected: "(H) = (\(channels))", actual: [invDt.count]) }
        if aReal.count != S * N2 { throw SSMError.shape(argument: "A_real", expected: "(S, N2) = (\(S), \(N2))", actual: [aReal.count]) }
        if aImag.count != S * N2 { throw SSMError.shape(argument: "A_imag", expected: "(S, N2) = (\(S), \(N2))", actual: [aImag.count]) }
        if let b, b.count != S * N2 { throw SSMError.shape(argument: "B", expected: "(S, N2) = (\(S), \(N2)) complex", actual: [b.count]) }
        if p.count != rank * S * N2 { throw SSMError.shape(argument: "P", expected: "(R, S, N2) = (\(rank), \(S), \(N2)) complex", actual: [p.count]) }
        if cTilde.count != copies * channels * N2 {
            throw SSMError.shape(argument: "C", expected: "(C, H, N2) = (\(copies), \(channels), \(N2)) complex", actual: [cTilde.count])
        }
        try checkFinite(invDt, "inv_dt"); try checkFinite(aReal, "A_real"); try checkFinite(aImag, "A_imag")
        if let b { try checkFinite(b, "B") }
        try checkFinite(p, "P"); try checkFinite(cTilde, "C")
    }

    /// K̂ at the ⌊L/2⌋ + 1 nodes `omegas` for copy c and channel h, in Double, into `w.out`.
    ///
    /// The two Cauchy terms of a mode share one denominator: with v = a·b,
    ///     v/(g − λ) + conj(v)/(g − conj λ) = (2·Re(v)·g − 2·Re(v·conj λ)) / ((g − λ)(g − conj λ)),
    /// so each node costs one complex reciprocal per mode and two real-weighted sums per pair
    /// (a, b), with the real weights 2·Re(v) and 2·Re(v·conj λ) computed once per channel. The
    /// sums run in C (`ssm_cauchy_sums_f64`): vectorized over the modes, four nodes per block.
    func spectrum(_ c: Int, _ h: Int, length L: Int, rate: Double, invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>],
                  p: [Complex<T>], cTilde: [Complex<T>], omegas: UnsafePointer<Complex<Double>>, into w: ForwardScratch) {
        let (N2, R, s) = (modes, rank, h % ssms)
        let pairs = (R + 1) * (R + 1)
        let delta = Double.exp(Double(invDt[h])) * rate
        for n in 0 ..< N2 { w.lambda[n] = Complex(-Double.exp(Double(aReal[s * N2 + n])), -Double(aImag[s * N2 + n])) }
        // Row 0 of `left` is C̃, rows 1 … R are Q_r = conj(P_r); column 0 of `right` is B, 1 … R are P_r.
        func leftValue(_ x: Int, _ n: Int) -> Complex<Double> {
            x == 0 ? complexDouble(cTilde[(c * channels + h) * N2 + n]) : complexDouble(p[((x - 1) * ssms + s) * N2 + n]).conjugate
        }
        func rightValue(_ y: Int, _ n: Int) -> Complex<Double> {
            y == 0 ? complexDouble(b[s * N2 + n]) : complexDouble(p[((y - 1) * ssms + s) * N2 + n])
        }
        // Real weights per pair (x, y) and mode: 2·Re(v), 2·Re(v·conj λ).
        var sumCB = 0.0
        for x in 0 ... R {
            for y in 0 ... R {
                for n in 0 ..< N2 {
                    let v = leftValue(x, n) * rightValue(y, n)
                    w.weightG[(x * (R + 1) + y) * N2 + n] = 2 * v.real
                    w.weightOne[(x * (R + 1) + y) * N2 + n] = 2 * (v * w.lambda[n].conjugate).real
                    if x == 0, y == 0 { sumCB += v.real }
                }
            }
        }
        // The Cauchy sums for every node but ω = −1, in one vectorized C call (CSSMKitKernels/cauchy.c).
        let nodes = L / 2 + 1 - (L % 2 == 0 ? 1 : 0)
        for j in 0 ..< nodes {
            let g = (Complex(1) - omegas[j]) / (Complex(1) + omegas[j]) * Complex(2 / delta)
            (w.gRe[j], w.gIm[j]) = (g.real, g.imaginary)
        }
        for n in 0 ..< N2 { (w.lambdaRe[n], w.lambdaAbs2[n]) = (w.lambda[n].real, w.lambda[n].lengthSquared) }
        ssm_cauchy_sums_f64(nodes, w.gRe, w.gIm, N2, w.lambdaRe, w.lambdaAbs2, pairs, w.weightG, w.weightOne, w.rRe, w.rIm, w.work)
        if L % 2 == 0 { w.out[L / 2] = Complex(delta * sumCB) }  // ω = −1: K̂ = Δ·Re Σ_n C̃_n B_n
        for j in 0 ..< nodes {
            func r(_ xy: Int) -> Complex<Double> { Complex(w.rRe[j * pairs + xy], w.rIm[j * pairs + xy]) }
            // r_C̃B − r_C̃P (I + r_QP)⁻¹ r_QB, with the R × R solve by Gaussian elimination.
            for i in 0 ..< R {
                for k in 0 ..< R { w.m[i * R + k] = r((1 + i) * (R + 1) + 1 + k) + Complex(i == k ? 1 : 0) }
                w.rhs[i] = r((1 + i) * (R + 1))
            }
            solveSmall(w.m, w.rhs, R)
            var correction = Complex<Double>.zero
            for i in 0 ..< R { correction = correction + r(1 + i) * w.rhs[i] }
            w.out[j] = (r(0) - correction) * (Complex(2) / (Complex(1) + omegas[j]))
        }
    }

    /// K̄: (C, H, L'), overwriting `k`, for C̃ attuned to `L`.
    ///
    /// `rate` changes the sampling rate as the official `forward(rate=)`: Δ becomes Δ·rate and
    /// the kernel is generated at L' = round(L / rate) nodes, so that it spans the same
    /// continuous length (rate 2: half the samples, twice the step). `k` holds C·H·L' values.
    /// `workspace` (for L') makes the call allocate nothing; without one, the call makes its own.
    /// - Throws: ``SSMError`` for wrong parameter counts, a NaN or infinity in a parameter, an
    ///   impossible `length` or `rate`, or finite parameters whose kernel overflows `T`.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(length L: Int, rate: Double = 1, invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>],
                        cTilde: [Complex<T>], k: inout [T], workspace: S4KernelWorkspace<T>? = nil) throws(SSMError) {
        try check(invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: cTilde)
        guard L >= 1 else { throw SSMError.value(argument: "length", expected: "L ≥ 1, got \(L)") }
        guard rate.isFinite, rate > 0 else { throw SSMError.value(argument: "rate", expected: "a finite rate > 0, got \(rate)") }
        // round(L / rate) must be a length the FFT can take (a rate of 1e-300 is not a length).
        guard Double(L) / rate <= Double(ConvolutionShape.maximumFFTSize / 2) else {
            throw SSMError.value(argument: "rate", expected: "round(L / rate) ≤ \(ConvolutionShape.maximumFFTSize / 2), got L = \(L), rate = \(rate)")
        }
        let discrete = Self.discreteLength(L, rate: rate)
        guard discrete >= 1 else { throw SSMError.value(argument: "rate", expected: "round(L / rate) ≥ 1, got L = \(L), rate = \(rate)") }
        if k.count != copies * channels * discrete {
            throw SSMError.shape(argument: "k", expected: "(C, H, L') = (\(copies), \(channels), \(discrete))", actual: [k.count])
        }
        let w = try self.workspace(workspace, length: discrete)
        let workers = max(1, min(threads, copies * channels))
        k.withUnsafeMutableBufferPointer { kp in
            // (copy, channel) rows in parallel, each worker in its own scratch.
            let rows = KernelRows(kernel: self, workspace: w, length: discrete, rate: rate, invDt: invDt, aReal: aReal, aImag: aImag,
                                  b: b, p: p, cTilde: cTilde, k: kp.baseAddress!)
            WorkerPool.forEachInParallel(copies * channels, threads: workers, rows) { rows, row, worker in rows.run(row, worker: worker) }
        }
        guard allFinite(k) else {
            throw SSMError.value(argument: "inv_dt, A_real, A_imag, B, P, C", expected: "parameters whose kernel is finite in \(T.self) (it overflowed)")
        }
    }

    /// `given` when it fits this kernel at `length`, else a new workspace.
    func workspace(_ given: S4KernelWorkspace<T>?, length: Int) throws(SSMError) -> S4KernelWorkspace<T> {
        if let given {
            guard given.matches(self, length: length) else {
                throw SSMError.value(argument: "workspace", expected: "a workspace made for this kernel at length \(length), got \(given.length)")
            }
            return given
        }
        return try S4KernelWorkspace(self, length: length)
    }

    /// One (copy, channel) row of K̄ per task.
    struct KernelRows {
        let kernel: S4Kernel
        let workspace: S4KernelWorkspace<T>
        let length: Int, rate: Double
        let invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>], cTilde: [Complex<T>]
        let k: UnsafeMutablePointer<T>

        func run(_ row: Int, worker: Int) {
            let L = length
            let (c, h) = row.quotientAndRemainder(dividingBy: kernel.channels)
            let scratch = ForwardScratch(kernel, length: L, workspace.worker(worker))
            kernel.spectrum(c, h, length: L, rate: rate, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: cTilde,
                            omegas: workspace.omegas, into: scratch)
            let spectrum = workspace.spectra.base + worker * workspace.spectrumStride, samples = workspace.real.base + worker * workspace.realStride
            for j in 0 ... L / 2 { spectrum[j] = complexT(scratch.out[j].divided(by: Double(L)), T.self) }
            workspace.fft.inverse(spectrum, samples)
            (k + row * L).update(from: samples, count: L)
        }
    }

    /// round(L / rate), the number of samples a kernel attuned to L spans at `rate`.
    public static func discreteLength(_ L: Int, rate: Double) -> Int { Int((Double(L) / rate).rounded()) }
}
