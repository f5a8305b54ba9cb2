import CSSMKitBLAS
import ComplexModule
import RealModule

/// Recurrent mode of the S4 (DPLR) kernel: stepping mirrors ``S4Kernel`` with C recovered from
/// C̃ (attuned to L), so that L steps from a zero state reproduce the convolution to rounding.
///
/// Legend: B batch · C output copies · H channels · N = 2·N2 state (conjugate pairs) · R rank.
///
/// The discretization is bilinear, Ā = (2/Δ − A)⁻¹(2/Δ + A), B̄ = (2/Δ − A)⁻¹·2B, with
/// A = diag(λ, conj λ) − Σ_r p_r p_r*. Three ways to step, all from the same parameters:
/// - `dense`: the full N × N complex Ā, O(N²) per step;
/// - `diagonal`: Ā's eigenbasis (LAPACK zgeev), O(N) per step — only as well conditioned as
///   Ā's eigenvectors (the official code is ~10% off for LegS at N = 64; see the README);
/// - `linear`: O(N·R) per step through the DPLR structure and Woodbury, no N × N matrix:
///   z = (2/Δ + Λ)x − P(P* x) + 2B u, x' = D z − D P (I + P* D P)⁻¹ P* D z, D = (2/Δ − Λ)⁻¹,
///   on the half state (the conjugate half is implied; P*x = 2·Re Σ_half conj(p)·x).
/// Outputs y = 2·Re Σ_half C x + D u. Set-up in Double; the state is kept in Double too (the
/// recurrence is a reference for the convolution, and a Float state would add L roundings).
/// It is not yet the fast step engine: a step allocates small work arrays.
public struct S4Recurrence: Sendable {
    public enum StepMode: String, Sendable, CaseIterable { case dense, diagonal, linear }

    public let mode: StepMode
    public let copies: Int, channels: Int, modes: Int, rank: Int
    /// Per channel: the step operator in the form `mode` uses.
    let steppers: [Stepper]
    /// C (true, recovered from C̃): per (copy, channel), over the state the stepper keeps.
    let outputs: [[Complex<Double>]]
    /// D: (C, H), or empty.
    let skip: [Double]

    enum Stepper: Sendable {
        /// Full Ā (N × N) and B̄ (N).
        case dense(aBar: [[Complex<Double>]], bBar: [Complex<Double>])
        /// Eigenvalues μ and the eigenbasis B̄ (N).
        case diagonal(mu: [Complex<Double>], bBar: [Complex<Double>])
        /// The half-state Woodbury step.
        case linear(twoOverDeltaPlusLambda: [Complex<Double>], d: [Complex<Double>], p: [[Complex<Double>]],
                    twoB: [Complex<Double>], inverse: [[Double]])
    }

    /// The step-mode state: per (batch, channel) row b·H + h, the stepper's state vector (the
    /// half state for `linear`, the full state for `dense`, eigenbasis coordinates for
    /// `diagonal`).
    public struct State: Sendable, Equatable {
        public var batch: Int
        public var x: [[Complex<Double>]]
    }

    /// Sets up stepping from the kernel's parameters; `cTilde` is attuned to `length`.
    /// `skip`: D of shape (C, H) or nil.
    public init<T: FFTScalar>(kernel: S4Kernel<T>, mode: StepMode, length L: Int, invDt: [T], aReal: [T], aImag: [T],
                              b: [Complex<T>], p: [Complex<T>], cTilde: [Complex<T>], skip: [T]? = nil) throws(SSMError) {
        try kernel.check(invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: cTilde)
        if let skip, skip.count != kernel.copies * kernel.channels {
            throw SSMError.shape(argument: "D", expected: "(C, H) = (\(kernel.copies), \(kernel.channels))", actual: [skip.count])
        }
        self.mode = mode
        let (copies, channels) = (kernel.copies, kernel.channels)
        (self.copies, self.channels, modes, rank) = (copies, channels, kernel.modes, kernel.rank)
        let cTrue = try kernel.recoverC(cTilde: cTilde, length: L, invDt: invDt, aReal: aReal, aImag: aImag, p: p)
        let (N2, R, S) = (kernel.modes, kernel.rank, kernel.ssms)
        var steppers: [Stepper] = []
        var outputs = [[Complex<Double>]](repeating: [], count: copies * channels)
        for h in 0 ..< channels {
            let s = h % S
            let delta = Double.exp(Double(invDt[h]))
            let bHalf = (0 ..< N2).map { complexDouble(b[s * N2 + $0]) }
            let cHalves = (0 ..< copies).map { c in (0 ..< N2).map { complexDouble(cTrue[(c * channels + h) * N2 + $0]) } }
            switch mode {
            case .linear:
                let lambda = (0 ..< N2).map { Complex(-Double.exp(Double(aReal[s * N2 + $0])), -Double(aImag[s * N2 + $0])) }
                let ps = (0 ..< R).map { r in (0 ..< N2).map { complexDouble(p[(r * S + s) * N2 + $0]) } }
                let d = lambda.map { Complex(1) / (Complex(2 / delta) - $0) }
                // (I + P* D P)⁻¹ with (P* D P)_rq = 2·Re Σ_half conj(p_r) d p_q: real R × R.
                var m = [[Complex<Double>]](repeating: [Complex<Double>](repeating: .zero, count: R), count: R)
                for r in 0 ..< R {
                    for q in 0 ..< R {
                        var sum = 0.0
                        for n in 0 ..< N2 { sum += (ps[r][n].conjugate * d[n] * ps[q][n]).real }
                        m[r][q] = Complex((r == q ? 1.0 : 0.0) + 2 * sum)
                    }
                }
                // Columns of (I + P*DP)⁻¹, then rows: inverse[r][q].
                var inverse = [[Double]](repeating: [Double](repeating: 0, count: R), count: R)
                for q in 0 ..< R {
                    var column = [Complex<Double>](repeating: .zero, count: R)
                    column[q] = Complex(1)
                    var copy = m
                    solveSmall(&copy, &column)
                    for r in 0 ..< R { inverse[r][q] = column[r].real }
                }
                let plus: [Complex<Double>] = lambda.map { Complex<Double>(2 / delta) + $0 }
                let twoB: [Complex<Double>] = bHalf.map { $0.multiplied(by: 2) }
                steppers.append(.linear(twoOverDeltaPlusLambda: plus, d: d, p: ps, twoB: twoB, inverse: inverse))
                for c in 0 ..< copies { outputs[c * channels + h] = cHalves[c] }
            case .dense, .diagonal:
                let aBar = kernel.denseABar(ssm: s, delta: delta, aReal: aReal, aImag: aImag, p: p)
                let n = 2 * N2
                let bFull = bHalf + bHalf.map(\.conjugate)
                // B̄ = (I − Δ/2·A)⁻¹ΔB = (Ā + I)·(Δ/2)·B.
                let bBar = (0 ..< n).map { i in (0 ..< n).reduce(Complex<Double>.zero) { $0 + (aBar[i][$1] + Complex(i == $1 ? 1 : 0)) * bFull[$1] }.multiplied(by: delta / 2) }
                // Full C over the full state: y = Σ_full C x = 2·Re Σ_half C x for a conjugate-symmetric x.
                let cFulls = cHalves.map { $0 + $0.map(\.conjugate) }
                if mode == .dense {
                    steppers.append(.dense(aBar: aBar, bBar: bBar))
                    for c in 0 ..< copies { outputs[c * channels + h] = cFulls[c] }
                } else {
                    let (mu, v) = try eigen(aBar)
                    // Eigenbasis: x̃ = V⁻¹x, so B̃ = V⁻¹B̄ and C̃ᵀ = Cᵀ V.
                    var vCopy = v
                    var bTilde = bBar
                    solveSmall(&vCopy, &bTilde)
                    steppers.append(.diagonal(mu: mu, bBar: bTilde))
                    for c in 0 ..< copies {
                        outputs[c * channels + h] = (0 ..< n).map { k in (0 ..< n).reduce(Complex<Double>.zero) { $0 + cFulls[c][$1] * v[$1][k] } }
                    }
                }
            }
        }
        self.steppers = steppers
        self.outputs = outputs
        self.skip = skip.map { $0.map(Double.init) } ?? []
    }

    /// A zero state for `batch` sequences.
    public func makeState(batch: Int) throws(SSMError) -> State {
        guard batch >= 1 else { throw SSMError.value(argument: "batch", expected: "a positive count, got \(batch)") }
        let size = mode == .linear ? modes : 2 * modes
        return State(batch: batch, x: [[Complex<Double>]](repeating: [Complex<Double>](repeating: .zero, count: size), count: batch * channels))
    }

    /// Steps a whole sequence: u: (B, H, L) → y: (B, C, H, L), advancing `state` by L steps.
    public func run<T: FFTScalar>(_ state: inout State, u: [T], y: inout [T], length L: Int) throws(SSMError) {
        let (B, H, C) = (state.batch, channels, copies)
        if u.count != B * H * L { throw SSMError.shape(argument: "u", expected: "(B, H, L) = (\(B), \(H), \(L))", actual: [u.count]) }
        if y.count != B * C * H * L { throw SSMError.shape(argument: "y", expected: "(B, C, H, L)", actual: [y.count]) }
        for b in 0 ..< B {
            for h in 0 ..< H {
                for t in 0 ..< L {
                    let ut = Double(u[(b * H + h) * L + t])
                    advance(&state.x[b * H + h], h, ut)
                    for c in 0 ..< C {
                        let sum = output(c, h, state.x[b * H + h])
                        y[((b * C + c) * H + h) * L + t] = T(sum + (skip.isEmpty ? 0 : skip[c * H + h] * ut))
                    }
                }
            }
        }
    }

    /// Output copy c of channel h for a state x (without D): Re Σ C x, or 2·Re over a half state.
    func output(_ c: Int, _ h: Int, _ x: [Complex<Double>]) -> Double {
        let out = outputs[c * channels + h]
        var sum = 0.0
        for i in 0 ..< x.count { sum += (out[i] * x[i]).real }
        return mode == .linear ? 2 * sum : sum
    }

    /// One step of channel h's state.
    func advance(_ x: inout [Complex<Double>], _ h: Int, _ u: Double) {
        switch steppers[h] {
        case let .dense(aBar, bBar):
            x = (0 ..< x.count).map { i in (0 ..< x.count).reduce(bBar[i].multiplied(by: u)) { $0 + aBar[i][$1] * x[$1] } }
        case let .diagonal(mu, bBar):
            for i in 0 ..< x.count { x[i] = mu[i] * x[i] + bBar[i].multiplied(by: u) }
        case let .linear(plus, d, p, twoB, inverse):
            let (n, R) = (x.count, p.count)
            // z = (2/Δ + Λ)x − P(P*x) + 2B u, with P*x = 2·Re Σ conj(p)·x (real).
            let px = (0 ..< R).map { r in 2 * (0 ..< n).reduce(0.0) { $0 + (p[r][$1].conjugate * x[$1]).real } }
            var z = (0 ..< n).map { i in plus[i] * x[i] + twoB[i].multiplied(by: u) }
            for r in 0 ..< R { for i in 0 ..< n { z[i] = z[i] - p[r][i].multiplied(by: px[r]) } }
            // x' = Dz − DP (I + P*DP)⁻¹ P*Dz.
            let dz = (0 ..< n).map { d[$0] * z[$0] }
            let pdz = (0 ..< R).map { r in 2 * (0 ..< n).reduce(0.0) { $0 + (p[r][$1].conjugate * dz[$1]).real } }
            let coefficients = (0 ..< R).map { r in (0 ..< R).reduce(0.0) { $0 + inverse[r][$1] * pdz[$1] } }
            for i in 0 ..< n {
                var correction = Complex<Double>.zero
                for r in 0 ..< R { correction = correction + p[r][i].multiplied(by: coefficients[r]) }
                x[i] = dz[i] - d[i] * correction
            }
        }
    }
}

/// Eigenvalues and right eigenvectors (columns of V) of a complex matrix, through LAPACK zgeev.
func eigen(_ a: [[Complex<Double>]]) throws(SSMError) -> ([Complex<Double>], [[Complex<Double>]]) {
    let n = a.count
    var flat = a.flatMap { $0 }
    var w = [Complex<Double>](repeating: .zero, count: n)
    var vr = [Complex<Double>](repeating: .zero, count: n * n)
    var dummy = [Complex<Double>](repeating: .zero, count: 1)
    let info = flat.withUnsafeMutableBufferPointer { fp in
        w.withUnsafeMutableBufferPointer { wp in
            vr.withUnsafeMutableBufferPointer { vp in
                dummy.withUnsafeMutableBufferPointer { dp in
                    fp.baseAddress!.withMemoryRebound(to: ssm_lapack_complex_double.self, capacity: n * n) { f in
                        wp.baseAddress!.withMemoryRebound(to: ssm_lapack_complex_double.self, capacity: n) { wr in
                            vp.baseAddress!.withMemoryRebound(to: ssm_lapack_complex_double.self, capacity: n * n) { v in
                                dp.baseAddress!.withMemoryRebound(to: ssm_lapack_complex_double.self, capacity: 1) { d in
                                    LAPACKE_zgeev(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int8(UInt8(ascii: "V")), Int32(n),
                                                  f, Int32(n), wr, d, 1, v, Int32(n))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    guard info == 0 else { throw SSMError.value(argument: "A", expected: "an eigendecomposition (LAPACK zgeev info \(info))") }
    return (w, (0 ..< n).map { i in Array(vr[i * n ..< (i + 1) * n]) })
}
