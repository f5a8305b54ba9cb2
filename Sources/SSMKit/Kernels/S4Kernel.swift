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
    func check(invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>], cTilde: [Complex<T>]) throws(SSMError) {
        let (S, N2) = (ssms, modes)
        if invDt.count != channels { throw SSMError.shape(argument: "inv_dt", expected: "(H) = (\(channels))", actual: [invDt.count]) }
        if aReal.count != S * N2 { throw SSMError.shape(argument: "A_real", expected: "(S, N2) = (\(S), \(N2))", actual: [aReal.count]) }
        if aImag.count != S * N2 { throw SSMError.shape(argument: "A_imag", expected: "(S, N2) = (\(S), \(N2))", actual: [aImag.count]) }
        if b.count != S * N2 { throw SSMError.shape(argument: "B", expected: "(S, N2) = (\(S), \(N2)) complex", actual: [b.count]) }
        if p.count != rank * S * N2 { throw SSMError.shape(argument: "P", expected: "(R, S, N2) = (\(rank), \(S), \(N2)) complex", actual: [p.count]) }
        if cTilde.count != copies * channels * N2 {
            throw SSMError.shape(argument: "C", expected: "(C, H, N2) = (\(copies), \(channels), \(N2)) complex", actual: [cTilde.count])
        }
    }

    /// K̂ at the ⌊L/2⌋ + 1 nodes for copy c and channel h, in Double.
    ///
    /// The two Cauchy terms of a mode share one denominator: with v = a·b,
    ///     v/(g − λ) + conj(v)/(g − conj λ) = (2·Re(v)·g − 2·Re(v·conj λ)) / ((g − λ)(g − conj λ)),
    /// so each node costs one complex reciprocal per mode and two real-weighted sums per pair
    /// (a, b), with the real weights 2·Re(v) and 2·Re(v·conj λ) computed once per channel. The
    /// sums run in C (`ssm_cauchy_sums_f64`): vectorized over the modes, four nodes per block.
    func spectrum(_ c: Int, _ h: Int, length L: Int, rate: Double, invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>],
                  p: [Complex<T>], cTilde: [Complex<T>]) -> [Complex<Double>] {
        let (N2, R, s) = (modes, rank, h % ssms)
        let pairs = (R + 1) * (R + 1)
        let delta = Double.exp(Double(invDt[h])) * rate
        let lambda = (0 ..< N2).map { Complex(-Double.exp(Double(aReal[s * N2 + $0])), -Double(aImag[s * N2 + $0])) }
        // Row 0 of `left` is C̃, rows 1 … R are Q_r = conj(P_r); column 0 of `right` is B, 1 … R are P_r.
        func leftValue(_ x: Int, _ n: Int) -> Complex<Double> {
            x == 0 ? complexDouble(cTilde[(c * channels + h) * N2 + n]) : complexDouble(p[((x - 1) * ssms + s) * N2 + n]).conjugate
        }
        func rightValue(_ y: Int, _ n: Int) -> Complex<Double> {
            y == 0 ? complexDouble(b[s * N2 + n]) : complexDouble(p[((y - 1) * ssms + s) * N2 + n])
        }
        // Real weights per pair (x, y) and mode: 2·Re(v), 2·Re(v·conj λ).
        var weightG = [Double](repeating: 0, count: pairs * N2), weightOne = weightG
        var sumCB = 0.0
        for x in 0 ... R {
            for y in 0 ... R {
                for n in 0 ..< N2 {
                    let v = leftValue(x, n) * rightValue(y, n)
                    weightG[(x * (R + 1) + y) * N2 + n] = 2 * v.real
                    weightOne[(x * (R + 1) + y) * N2 + n] = 2 * (v * lambda[n].conjugate).real
                    if x == 0, y == 0 { sumCB += v.real }
                }
            }
        }
        // The Cauchy sums for every node but ω = −1, in one vectorized C call (CSSMKitKernels/cauchy.c).
        let nodes = L / 2 + 1 - (L % 2 == 0 ? 1 : 0)
        var gRe = [Double](repeating: 0, count: nodes), gIm = gRe
        let omegas = (0 ..< nodes).map { j in
            let angle = -2 * Double.pi * Double(j) / Double(L)
            return Complex(Double.cos(angle), Double.sin(angle))
        }
        for j in 0 ..< nodes {
            let g = (Complex(1) - omegas[j]) / (Complex(1) + omegas[j]) * Complex(2 / delta)
            (gRe[j], gIm[j]) = (g.real, g.imaginary)
        }
        let lambdaRe = lambda.map(\.real), lambdaAbs2 = lambda.map(\.lengthSquared)
        var rRe = [Double](repeating: 0, count: nodes * pairs), rIm = rRe
        var work = [Double](repeating: 0, count: 8 * N2)
        ssm_cauchy_sums_f64(nodes, gRe, gIm, N2, lambdaRe, lambdaAbs2, pairs, weightG, weightOne, &rRe, &rIm, &work)
        var out = [Complex<Double>](repeating: .zero, count: L / 2 + 1)
        var m = [[Complex<Double>]](repeating: [Complex<Double>](repeating: .zero, count: R), count: R)
        var rhs = [Complex<Double>](repeating: .zero, count: R)
        if L % 2 == 0 { out[L / 2] = Complex(delta * sumCB) }  // ω = −1: K̂ = Δ·Re Σ_n C̃_n B_n
        for j in 0 ..< nodes {
            func r(_ xy: Int) -> Complex<Double> { Complex(rRe[j * pairs + xy], rIm[j * pairs + xy]) }
            // r_C̃B − r_C̃P (I + r_QP)⁻¹ r_QB, with the R × R solve by Gaussian elimination.
            for i in 0 ..< R {
                for k in 0 ..< R { m[i][k] = r((1 + i) * (R + 1) + 1 + k) + Complex(i == k ? 1 : 0) }
                rhs[i] = r((1 + i) * (R + 1))
            }
            solveSmall(&m, &rhs)
            let correction = (0 ..< R).reduce(Complex<Double>.zero) { $0 + r(1 + $1) * rhs[$1] }
            out[j] = (r(0) - correction) * (Complex(2) / (Complex(1) + omegas[j]))
        }
        return out
    }

    /// K̄: (C, H, L'), overwriting `k`, for C̃ attuned to `L`.
    ///
    /// `rate` changes the sampling rate as the official `forward(rate=)`: Δ becomes Δ·rate and
    /// the kernel is generated at L' = round(L / rate) nodes, so that it spans the same
    /// continuous length (rate 2: half the samples, twice the step). `k` holds C·H·L' values.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(length L: Int, rate: Double = 1, invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>],
                        cTilde: [Complex<T>], k: inout [T]) throws(SSMError) {
        try check(invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: cTilde)
        guard L >= 1 else { throw SSMError.value(argument: "length", expected: "L ≥ 1, got \(L)") }
        guard rate.isFinite, rate > 0 else { throw SSMError.value(argument: "rate", expected: "a finite rate > 0, got \(rate)") }
        let discrete = Self.discreteLength(L, rate: rate)
        guard discrete >= 1 else { throw SSMError.value(argument: "rate", expected: "round(L / rate) ≥ 1, got L = \(L), rate = \(rate)") }
        if k.count != copies * channels * discrete {
            throw SSMError.shape(argument: "k", expected: "(C, H, L') = (\(copies), \(channels), \(discrete))", actual: [k.count])
        }
        let fft = FFT.plan(size: discrete, as: T.self, effort: effort)
        let workers = max(1, min(threads, copies * channels))
        let realStride = alignedStride(discrete, of: T.self), spectrumStride = alignedStride(discrete / 2 + 1, of: Complex<T>.self)
        let real = AlignedBuffer<T>(count: workers * realStride)
        let spectra = AlignedBuffer<Complex<T>>(count: workers * spectrumStride)
        k.withUnsafeMutableBufferPointer { kp in
            let output = SendablePointer(kp.baseAddress!)
            // (copy, channel) rows in parallel. Each call allocates its scratch, the closure and, per
            // row, the Double work arrays of `spectrum`: the blocked Float Cauchy loop will remove them.
            let task: @Sendable (Int, Int) -> Void = { row, worker in
                let (c, h) = row.quotientAndRemainder(dividingBy: channels)
                let khat = spectrum(c, h, length: discrete, rate: rate, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: cTilde)
                let spectrum = spectra.base + worker * spectrumStride, samples = real.base + worker * realStride
                for j in 0 ... discrete / 2 { spectrum[j] = complexT(khat[j].divided(by: Double(discrete)), T.self) }
                fft.inverse(spectrum, samples)
                (output.pointer + row * discrete).update(from: samples, count: discrete)
            }
            WorkerPool.shared.runTasks(copies * channels, workers: workers, task)
        }
    }

    /// round(L / rate), the number of samples a kernel attuned to L spans at `rate`.
    public static func discreteLength(_ L: Int, rate: Double) -> Int { Int((Double(L) / rate).rounded()) }
}

/// Solves m·x = rhs in place (x returned in rhs) for a small complex system, with partial
/// pivoting. `m` is R × R, R ≤ a few.
func solveSmall(_ m: inout [[Complex<Double>]], _ rhs: inout [Complex<Double>]) {
    let n = rhs.count
    for col in 0 ..< n {
        let pivot = (col ..< n).max { m[$0][col].length < m[$1][col].length }!
        if pivot != col { m.swapAt(pivot, col); rhs.swapAt(pivot, col) }
        for row in col + 1 ..< n {
            let f = m[row][col] / m[col][col]
            for k in col ..< n { m[row][k] = m[row][k] - f * m[col][k] }
            rhs[row] = rhs[row] - f * rhs[col]
        }
    }
    for row in stride(from: n - 1, through: 0, by: -1) {
        var s = rhs[row]
        for k in row + 1 ..< n { s = s - m[row][k] * rhs[k] }
        rhs[row] = s / m[row][row]
    }
}
