import Testing
@testable import SSMKit

/// Seeded S4 parameters in the official init's spirit: HiPPO-LegS-like decay, random B, P, C̃.
struct TestS4Parameters {
    var invDt: [Double], aReal: [Double], aImag: [Double], b: [Complex<Double>], p: [Complex<Double>], c: [Complex<Double>]

    init(copies C: Int, channels H: Int, ssms S: Int, modes N2: Int, rank R: Int, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        func u(_ lo: Double, _ hi: Double) -> Double { Double.random(in: lo ..< hi, using: &rng) }
        func z() -> Complex<Double> { Complex(u(-1, 1), u(-1, 1)) }
        invDt = (0 ..< H).map { _ in u(Double.log(1e-2), Double.log(2e-1)) }
        aReal = (0 ..< S * N2).map { _ in Double.log(u(0.2, 0.8)) }
        aImag = (0 ..< S * N2).map { Double($0 % N2) * .pi + u(-0.3, 0.3) }
        b = (0 ..< S * N2).map { _ in z() }
        p = (0 ..< R * S * N2).map { _ in z().multiplied(by: 0.3) }
        c = (0 ..< C * H * N2).map { _ in z() }
    }

    func kernel(_ k: S4Kernel<Double>, _ L: Int) throws -> [Double] {
        var out = [Double](repeating: 0, count: k.copies * k.channels * L)
        try k.forward(length: L, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: c, k: &out)
        return out
    }
}

/// x with m·x = rhs (complex, Gaussian elimination with partial pivoting) for the tests.
func solveComplex(_ m: [[Complex<Double>]], _ rhs: [Complex<Double>]) -> [Complex<Double>] {
    var (a, x) = (m, rhs)
    solveSmall(&a, &x)
    return x
}

struct S4Case: CustomStringConvertible, Sendable {
    var C: Int, H: Int, S: Int, N2: Int, R: Int, L: Int
    var description: String { "C=\(C) H=\(H) S=\(S) N2=\(N2) R=\(R) L=\(L)" }
}

let s4Sweep: [S4Case] = [
    S4Case(C: 1, H: 1, S: 1, N2: 1, R: 1, L: 1),
    S4Case(C: 1, H: 2, S: 1, N2: 4, R: 1, L: 2),
    S4Case(C: 2, H: 2, S: 2, N2: 4, R: 2, L: 7),
    S4Case(C: 1, H: 4, S: 2, N2: 8, R: 1, L: 64),
    S4Case(C: 2, H: 1, S: 1, N2: 6, R: 2, L: 101),
]

@Suite("S4 DPLR kernel")
struct S4KernelTests {
    @Test("Cauchy + Woodbury kernel = C Ā^l B̄ by explicit powers of the dense bilinear system, C from C̃",
          arguments: s4Sweep)
    func matrixPowers(_ c: S4Case) throws {
        let params = TestS4Parameters(copies: c.C, channels: c.H, ssms: c.S, modes: c.N2, rank: c.R, seed: 11)
        let kernel = try S4Kernel<Double>(copies: c.C, channels: c.H, ssms: c.S, modes: c.N2, rank: c.R)
        let k = try params.kernel(kernel, c.L)
        let n = 2 * c.N2
        for copy in 0 ..< c.C {
            for h in 0 ..< c.H {
                let s = h % c.S
                let delta = Double.exp(params.invDt[h])
                // Full conjugate-pair system: A = diag(λ, conj λ) − Σ_r p_r p_r*, B, C̃ likewise.
                func pair(_ v: (Int) -> Complex<Double>) -> [Complex<Double>] { (0 ..< c.N2).map(v) + (0 ..< c.N2).map { v($0).conjugate } }
                let lambda = pair { Complex(-Double.exp(params.aReal[s * c.N2 + $0]), -params.aImag[s * c.N2 + $0]) }
                let ps = (0 ..< c.R).map { r in pair { params.p[(r * c.S + s) * c.N2 + $0] } }
                let bFull = pair { params.b[s * c.N2 + $0] }
                let cTilde = pair { params.c[(copy * c.H + h) * c.N2 + $0] }
                var a = (0 ..< n).map { i in (0 ..< n).map { j in i == j ? lambda[i] : Complex<Double>.zero } }
                for pr in ps { for i in 0 ..< n { for j in 0 ..< n { a[i][j] = a[i][j] - pr[i] * pr[j].conjugate } } }
                // Bilinear: Ā = (I − Δ/2 A)⁻¹(I + Δ/2 A), B̄ = (I − Δ/2 A)⁻¹ Δ B, column by column.
                let minus = (0 ..< n).map { i in (0 ..< n).map { j in Complex(i == j ? 1 : 0) - a[i][j].multiplied(by: delta / 2) } }
                let aBarColumns = (0 ..< n).map { j in solveComplex(minus, (0 ..< n).map { i in Complex(i == j ? 1 : 0) + a[i][j].multiplied(by: delta / 2) }) }
                let aBar = (0 ..< n).map { i in (0 ..< n).map { j in aBarColumns[j][i] } }
                let bBar = solveComplex(minus, bFull.map { $0.multiplied(by: delta) })
                // C from C̃ = C (I − Ā^L): solve (I − Ā^L)ᵀ C = C̃.
                var power = (0 ..< n).map { i in (0 ..< n).map { j in Complex<Double>(i == j ? 1 : 0) } }
                for _ in 0 ..< c.L { power = (0 ..< n).map { i in (0 ..< n).map { j in (0 ..< n).reduce(Complex<Double>.zero) { $0 + power[i][$1] * aBar[$1][j] } } } }
                let system = (0 ..< n).map { i in (0 ..< n).map { j in Complex(i == j ? 1 : 0) - power[j][i] } }
                let cTrue = solveComplex(system, cTilde)
                var x = bBar
                let scale = max(1, k.map(abs).max()!)
                for l in 0 ..< c.L {
                    let kl = zip(cTrue, x).reduce(Complex<Double>.zero) { $0 + $1.0 * $1.1 }
                    #expect(abs(kl.real - k[(copy * c.H + h) * c.L + l]) <= 1e-10 * scale, "\(c): copy \(copy) h \(h) l \(l)")
                    #expect(abs(kl.imaginary) <= 1e-10 * scale)
                    x = (0 ..< n).map { i in (0 ..< n).reduce(Complex<Double>.zero) { $0 + aBar[i][$1] * x[$1] } }
                }
            }
        }
    }

    @Test("S4D with P = 0 through the Cauchy path = the Vandermonde path (bilinear, C̃ converted)")
    func diagonalAgreement() throws {
        let (H, N2, L) = (2, 4, 33)
        var params = TestS4Parameters(copies: 1, channels: H, ssms: H, modes: N2, rank: 1, seed: 12)
        params.p = [Complex<Double>](repeating: .zero, count: H * N2)
        // With P = 0 the S4 kernel is the diagonal one with C = C̃ (1 − Ā^L)⁻¹ per mode.
        let s4 = try S4Kernel<Double>(copies: 1, channels: H, ssms: H, modes: N2, rank: 1)
        let k4 = try params.kernel(s4, L)
        let s4d = try S4DKernel<Double>(channels: H, modes: N2, discretization: .bilinear)
        var cTrue: [Complex<Double>] = []
        for h in 0 ..< H {
            for n in 0 ..< N2 {
                let lambda = Complex(-Double.exp(params.aReal[h * N2 + n]), -params.aImag[h * N2 + n])
                let mode = DiscreteMode(.bilinear, delta: Double.exp(params.invDt[h]), lambda: lambda)
                cTrue.append(params.c[h * N2 + n] / (Complex(1) - Complex.exp(mode.logABar.multiplied(by: Double(L)))))
            }
        }
        var kd = [Double](repeating: 0, count: H * L)
        try s4d.forward(length: L, logDt: params.invDt, c: cTrue, logAReal: params.aReal, aImag: params.aImag.map { -$0 },
                        b: params.b, k: &kd)
        #expect(relativeError(k4, kd) <= 1e-11)
    }

    @Test("Double backward = central finite differences for every parameter", arguments: s4Sweep)
    func backwardFiniteDifferences(_ c: S4Case) throws {
        let params = TestS4Parameters(copies: c.C, channels: c.H, ssms: c.S, modes: c.N2, rank: c.R, seed: 13)
        let kernel = try S4Kernel<Double>(copies: c.C, channels: c.H, ssms: c.S, modes: c.N2, rank: c.R)
        var rng = SplitMix64(seed: 14)
        let dK: [Double] = .random(c.C * c.H * c.L, &rng)
        var dInvDt = [Double](repeating: 0, count: c.H), dAReal = [Double](repeating: 0, count: c.S * c.N2), dAImag = dAReal
        var dB = [Complex<Double>](repeating: .zero, count: c.S * c.N2), dP = [Complex<Double>](repeating: .zero, count: c.R * c.S * c.N2)
        var dC = [Complex<Double>](repeating: .zero, count: c.C * c.H * c.N2)
        try kernel.backward(length: c.L, dK: dK, invDt: params.invDt, aReal: params.aReal, aImag: params.aImag, b: params.b,
                            p: params.p, cTilde: params.c, dInvDt: &dInvDt, dAReal: &dAReal, dAImag: &dAImag, dB: &dB, dP: &dP, dC: &dC)
        // Central differences with step 1e-6: truncation ~1e-12·f''' and rounding ~1e-16/1e-6.
        let eps = 1e-6
        func fd(_ bump: (inout TestS4Parameters, Double) -> Void) throws -> Double {
            var up = params, down = params
            bump(&up, eps); bump(&down, -eps)
            return (dot(dK, try up.kernel(kernel, c.L)) - dot(dK, try down.kernel(kernel, c.L))) / (2 * eps)
        }
        let scale = max(1, maxAbs(dInvDt), maxAbs(dAReal), maxAbs(dAImag))
        func expectClose(_ analytic: Double, _ numeric: Double, _ what: String) {
            #expect(abs(analytic - numeric) <= 1e-6 * scale, "\(c): \(what): \(analytic) vs \(numeric)")
        }
        for h in [0, c.H - 1] { expectClose(dInvDt[h], try fd { $0.invDt[h] += $1 }, "d_inv_dt[\(h)]") }
        for i in [0, c.S * c.N2 - 1] {
            expectClose(dAReal[i], try fd { $0.aReal[i] += $1 }, "d_A_real[\(i)]")
            expectClose(dAImag[i], try fd { $0.aImag[i] += $1 }, "d_A_imag[\(i)]")
            expectClose(dB[i].real, try fd { $0.b[i] = $0.b[i] + Complex($1, 0) }, "d_B[\(i)].re")
            expectClose(dB[i].imaginary, try fd { $0.b[i] = $0.b[i] + Complex(0, $1) }, "d_B[\(i)].im")
        }
        for i in [0, c.R * c.S * c.N2 - 1] {
            expectClose(dP[i].real, try fd { $0.p[i] = $0.p[i] + Complex($1, 0) }, "d_P[\(i)].re")
            expectClose(dP[i].imaginary, try fd { $0.p[i] = $0.p[i] + Complex(0, $1) }, "d_P[\(i)].im")
        }
        for i in [0, c.C * c.H * c.N2 - 1] {
            expectClose(dC[i].real, try fd { $0.c[i] = $0.c[i] + Complex($1, 0) }, "d_C[\(i)].re")
            expectClose(dC[i].imaginary, try fd { $0.c[i] = $0.c[i] + Complex(0, $1) }, "d_C[\(i)].im")
        }
    }
}

@Suite("S4 C̃ bookkeeping and sampling rate")
struct S4CTildeTests {
    static let shape = S4Case(C: 2, H: 2, S: 1, N2: 4, R: 1, L: 16)

    func make() throws -> (S4Kernel<Double>, TestS4Parameters) {
        let c = Self.shape
        return (try S4Kernel<Double>(copies: c.C, channels: c.H, ssms: c.S, modes: c.N2, rank: c.R),
                TestS4Parameters(copies: c.C, channels: c.H, ssms: c.S, modes: c.N2, rank: c.R, seed: 21))
    }

    @Test("recover(attune(C)) = C; doubling L → 2L equals attuning to 2L")
    func roundTrips() throws {
        let (kernel, p) = try make()
        let cTilde = try kernel.attune(c: p.c, length: 16, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, p: p.p)
        let back = try kernel.recoverC(cTilde: cTilde, length: 16, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, p: p.p)
        #expect(zip(back, p.c).map { ($0 - $1).length }.max()! <= 1e-12)
        let doubled = try kernel.doubleAttunedLength(cTilde: cTilde, from: 16, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, p: p.p)
        let direct = try kernel.attune(c: p.c, length: 32, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, p: p.p)
        #expect(zip(doubled, direct).map { ($0 - $1).length }.max()! <= 1e-12)
        // Bad input is refused by name: a short inv_dt, a NaN in A_real, and an undamped
        // system (Re λ = −exp(−800) = 0, Im λ = 0, P = 0: Ā = I, so I − Ā^L = 0 has no inverse).
        #expect(throws: SSMError.shape(argument: "inv_dt", expected: "(H) = (\(kernel.channels))", actual: [1])) {
            try kernel.attune(c: p.c, length: 16, invDt: [0.1], aReal: p.aReal, aImag: p.aImag, p: p.p)
        }
        var nan = p.aReal
        nan[0] = .nan
        #expect(throws: SSMError.self) { try kernel.recoverC(cTilde: cTilde, length: 16, invDt: p.invDt, aReal: nan, aImag: p.aImag, p: p.p) }
        let (undamped, zero) = (p.aReal.map { _ in -800.0 }, p.aImag.map { _ in 0.0 })
        #expect(throws: SSMError.self) {
            try kernel.recoverC(cTilde: cTilde, length: 16, invDt: p.invDt, aReal: undamped, aImag: zero, p: p.p.map { _ in .zero })
        }
    }

    /// K̄[l] = 2·Re(C Ā^l B̄) over the first half of the conjugate-pair system (the second half is
    /// its conjugate), with B̄ = (I − Δ/2·A)⁻¹ΔB from Ā: B̄ = (Ā + I)·(Δ/2)·B.
    func denseKernel(_ kernel: S4Kernel<Double>, _ p: TestS4Parameters, c: [Complex<Double>], length L: Int, rate: Double) -> [Double] {
        let (N2, H, C) = (kernel.modes, kernel.channels, kernel.copies)
        var out = [Double](repeating: 0, count: C * H * L)
        for h in 0 ..< H {
            let delta = Double.exp(p.invDt[h]) * rate
            let aBar = kernel.denseABar(ssm: h % kernel.ssms, delta: delta, aReal: p.aReal, aImag: p.aImag, p: p.p)
            let n = 2 * N2
            let bFull = (0 ..< N2).map { p.b[(h % kernel.ssms) * N2 + $0] } + (0 ..< N2).map { p.b[(h % kernel.ssms) * N2 + $0].conjugate }
            // (I − Δ/2 A)⁻¹ = (Ā + I)/2, so B̄ = (Ā + I)·(Δ/2)·B.
            var x = (0 ..< n).map { i in (0 ..< n).reduce(Complex<Double>.zero) { $0 + (aBar[i][$1] + Complex(i == $1 ? 1 : 0)) * bFull[$1] }.multiplied(by: delta / 2) }
            for l in 0 ..< L {
                for copy in 0 ..< C {
                    let cFull = (0 ..< N2).map { c[(copy * H + h) * N2 + $0] } + (0 ..< N2).map { c[(copy * H + h) * N2 + $0].conjugate }
                    out[(copy * H + h) * L + l] = zip(cFull, x).reduce(Complex<Double>.zero) { $0 + $1.0 * $1.1 }.real
                }
                x = (0 ..< n).map { i in (0 ..< n).reduce(Complex<Double>.zero) { $0 + aBar[i][$1] * x[$1] } }
            }
        }
        return out
    }

    @Test("the kernel of attune(C, L) is the truncated kernel of C; at rate r it spans round(L/r) steps of r·Δ",
          arguments: [1.0, 2.0, 0.5])
    func attunedKernelAndRate(rate: Double) throws {
        let (kernel, p) = try make()
        let L = 16
        let cTilde = try kernel.attune(c: p.c, length: L, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, p: p.p)
        let discrete = S4Kernel<Double>.discreteLength(L, rate: rate)
        var k = [Double](repeating: 0, count: kernel.copies * kernel.channels * discrete)
        try kernel.forward(length: L, rate: rate, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, b: p.b, p: p.p, cTilde: cTilde, k: &k)
        // At rate r the same C̃ serves a kernel of round(L/r) steps of r·Δ, whose own true C is
        // recovered from C̃ at that length and step.
        let shifted = p.invDt.map { $0 + Double.log(rate) }
        let cAtRate = try kernel.recoverC(cTilde: cTilde, length: discrete, invDt: shifted, aReal: p.aReal, aImag: p.aImag, p: p.p)
        let expected = denseKernel(kernel, p, c: cAtRate, length: discrete, rate: rate)
        #expect(relativeError(k, expected) <= 1e-10, "rate \(rate)")
        if rate == 1 { #expect(relativeError(k, denseKernel(kernel, p, c: p.c, length: L, rate: 1)) <= 1e-10) }
    }
}
