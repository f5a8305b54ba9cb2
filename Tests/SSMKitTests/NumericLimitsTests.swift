import Testing
@testable import SSMKit

/// The scans across their documented input ranges, in Float and Double: no NaN or infinity
/// where the inputs are in range, Float within a stated error of Double, and a typed error when
/// an input overflows the precision.
///
/// Ranges swept (the Accuracy article states them): time steps dt′ from 4.5e-5 (softplus of
/// −10) to 20 (softplus of 20), decays A from −1e−3 to −100 (so dt′·A from −4.5e−8 to −2000
/// per step), inputs of magnitude ≤ 1, lengths 1, 4097 and 2^16 (2^20 for the selective scan).
@Suite("numerics at the limits of the documented ranges")
struct NumericLimitsTests {
    static let rawTimeSteps: [Double] = [-10, 0, 5, 20]
    static let decays: [Double] = [-1e-3, -1, -16, -100]

    static func relative(_ a: [Float], _ b: [Double]) -> Double {
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs(Double($0) - $1) }.max()! / scale
    }

    @Test("SSD: every (dt, A) of the range at L = 1, 4097 and 2^16 is finite; Float within 1e-4 of Double", arguments: [1, 4097, 1 << 16])
    func ssd(length L: Int) throws {
        let shape = try SSDShape(batch: 1, length: L, heads: 2, headDimension: 4, groups: 1, state: 8)
        var worst = 0.0
        for raw in Self.rawTimeSteps {
            for a in Self.decays {
                var rng = SplitMix64(seed: UInt64(L))
                func r(_ n: Int) -> [Double] { (0 ..< n).map { _ in Double.random(in: -1 ..< 1, using: &rng) } }
                let (x, b, c) = (r(shape.sequenceCount), r(shape.projectionCount), r(shape.projectionCount))
                let dt = [Double](repeating: raw, count: shape.timeStepCount)
                let inputs = SSDInputs<Double>(x: x, dt: dt, a: [a, a / 2], b: b, c: c, d: [1, 0.5])
                let double = try SSDScan<Double>(shape: shape, chunkLength: 256).forward(inputs).out
                let f = { (v: [Double]) in v.map { Float($0) } }
                let float = try SSDScan<Float>(shape: shape, chunkLength: 256)
                    .forward(SSDInputs<Float>(x: f(x), dt: f(dt), a: f([a, a / 2]), b: f(b), c: f(c), d: [1, 0.5])).out
                #expect(double.allSatisfy(\.isFinite) && float.allSatisfy(\.isFinite), "dt \(raw), A \(a)")
                worst = max(worst, Self.relative(float, double))
            }
        }
        #expect(worst <= 1e-4, "worst Float error \(worst) at L = \(L)")
    }

    /// At L = 2^20 the slowest decays (dt′·A ≈ −4.5e−8 per step, a factor Float rounds to 1 −
    /// 6e−8) sum a million terms into a Float state: measured 3.6e−4 of Double with the AVX-512
    /// loops and 1.2e−3 with the plain loops (a ThreadSanitizer build), so the bound there is
    /// 3e−3; everywhere else 1e−4.
    @Test("the selective scan: every (Δ, A) of the range at L = 1, 4097 and 2^20 is finite; Float within 1e-4 of Double (3e-3 at 2^20)",
          arguments: [1, 4097, 1 << 20])
    func selective(length L: Int) throws {
        let shape = try SelectiveScanShape(batch: 1, channels: 2, state: 4, length: L)
        var worst = 0.0
        for raw in Self.rawTimeSteps {
            for a in Self.decays {
                var rng = SplitMix64(seed: UInt64(L) &+ 1)
                func r(_ n: Int) -> [Double] { (0 ..< n).map { _ in Double.random(in: -1 ..< 1, using: &rng) } }
                let (u, b, c) = (r(shape.sequenceCount), r(shape.count(shape.b)), r(shape.count(shape.c)))
                let delta = [Double](repeating: raw, count: shape.sequenceCount)
                let aa = [Double](repeating: a, count: 2 * 4)
                let double = try SelectiveScan<Double>(shape: shape, deltaSoftplus: true)
                    .forward(SelectiveScanInputs(u: u, delta: delta, a: aa, b: b, c: c, d: [1, 1])).out
                let f = { (v: [Double]) in v.map { Float($0) } }
                let float = try SelectiveScan<Float>(shape: shape, deltaSoftplus: true)
                    .forward(SelectiveScanInputs(u: f(u), delta: f(delta), a: f(aa), b: f(b), c: f(c), d: [1, 1])).out
                #expect(double.allSatisfy(\.isFinite) && float.allSatisfy(\.isFinite), "Δ \(raw), A \(a)")
                worst = max(worst, Self.relative(float, double))
            }
        }
        #expect(worst <= (L > 1 << 16 ? 3e-3 : 1e-4), "worst Float error \(worst) at L = \(L)")
    }

    @Test("out of range: inputs that overflow Float give a typed error naming the inputs, not infinities")
    func overflow() throws {
        let shape = try SSDShape(batch: 1, length: 64, heads: 1, headDimension: 2, groups: 1, state: 2)
        let x = [Float](repeating: 3e38, count: shape.sequenceCount), ones = [Float](repeating: 1, count: shape.projectionCount)
        #expect {
            try SSDScan<Float>(shape: shape).forward(SSDInputs(x: x, dt: [Float](repeating: 5, count: shape.timeStepCount), a: [-1e-3], b: ones, c: ones))
        } throws: { error in
            guard case let SSMError.value(argument, _) = error else { return false }
            return argument.hasPrefix("x, dt")
        }
        let s = try SelectiveScanShape(batch: 1, channels: 1, state: 2, length: 64)
        #expect {
            try SelectiveScan<Float>(shape: s, deltaSoftplus: true).forward(SelectiveScanInputs(
                u: [Float](repeating: 3e38, count: 64), delta: [Float](repeating: 5, count: 64), a: [-1e-3, -1e-3],
                b: [Float](repeating: 1, count: s.count(s.b)), c: [Float](repeating: 1, count: s.count(s.c))))
        } throws: { error in
            guard case let SSMError.value(argument, _) = error else { return false }
            return argument.hasPrefix("u, delta")
        }
    }
}

/// The convolution and the two kernel generators out to L = 2^22, in Float and Double, against
/// references evaluated exactly at sampled positions: a compensated direct sum for the
/// convolution, a closed-form exponential per power for the S4D kernel, and powers of the dense
/// DPLR system by repeated squaring for the S4 kernel. Errors are relative to the bound on the
/// output's size (Σ|k|·max|u|; Σ_n 2|C B B̄|; the largest sampled value), so a kernel that has
/// decayed to nothing is still measured against what it could have been.
///
/// The S4D reference takes log Ā as the kernel does (λ·Δ, or log1p differences): it checks the
/// powers, anchors and weights given log Ā, which is as far as the parameters' own rounding
/// lets any Double evaluation go (a relative change ε in Δ moves K̄[l] by l·|Δλ|·ε).
///
/// Ranges swept (the Accuracy article states them): S4D Δ from 1e-4 to 1 and Re λ from −1e-4
/// to −100 with Im λ up to 200; S4 Δ from 1e-3 to 0.1 with random DPLR parts, rank 1 and 2,
/// one case decaying slowly enough (|Re λ| 1e-4, |P| 1e-2) that Ā^L and C̃'s correction matter
/// at 2^22; state sizes N2 = 4 and 64 (S4D), 2 and 32 (S4); lengths 1, 4097 and 2^22.
@Suite("numerics at long lengths: convolution and kernels to L = 2^22")
struct LongLengthLimitsTests {
    static let lengths = [1, 4097, 1 << 22]

    /// 0, 1, L − 1 and 29 positions spread over [0, L).
    static func positions(_ L: Int) -> [Int] {
        var rng = SplitMix64(seed: UInt64(L) &* 7)
        return Array(Set([0, min(1, L - 1), L - 1] + (0 ..< 29).map { _ in Int.random(in: 0 ..< L, using: &rng) })).sorted()
    }

    /// Σ_{j ≤ t} k[j]·u[t − j], in Double with Neumaier's compensated sum.
    static func direct(u: ArraySlice<Double>, k: ArraySlice<Double>, t: Int) -> Double {
        var sum = 0.0, compensation = 0.0
        let (u0, k0) = (u.startIndex, k.startIndex)
        for j in 0 ... min(t, k.count - 1) {
            let term = k[k0 + j] * u[u0 + t - j], next = sum + term
            compensation += abs(sum) >= abs(term) ? (sum - next) + term : (term - next) + sum
            sum = next
        }
        return sum + compensation
    }

    @Test("FFT convolution: Float and Double against compensated direct sums, L = 1, 4097, 2^22", arguments: lengths)
    func convolution(length L: Int) throws {
        // Channel 0: a kernel of uniform noise that never decays (|y| grows as √L); channel 1: a
        // slowly decaying oscillation (|y| grows as L). D = 0.5 on both.
        let H = 2
        var rng = SplitMix64(seed: 41)
        let u = (0 ..< H * L).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let k = (0 ..< L).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
              + (0 ..< L).map { l in Double.exp(-8 * Double(l) / Double(L)) * Double.cos(0.01 * Double(l)) }
        let d = [0.5, 0.5]
        let shape = ConvolutionShape(batch: 1, channels: H, length: L)
        var yDouble = [Double](repeating: 0, count: H * L), yFloat = [Float](repeating: 0, count: H * L)
        try FFTConvolution<Double>(shape: shape).forward(u: u, kernel: k, skip: d, y: &yDouble)
        let f = { (v: [Double]) in v.map { Float($0) } }
        try FFTConvolution<Float>(shape: shape).forward(u: f(u), kernel: f(k), skip: f(d), y: &yFloat)
        var worst = (double: 0.0, float: 0.0)
        for h in 0 ..< H {
            let (uh, kh) = (u[h * L ..< (h + 1) * L], k[h * L ..< (h + 1) * L])
            let scale = (kh.reduce(0) { $0 + abs($1) } + d[h]) * uh.reduce(0) { max($0, abs($1)) }
            for t in Self.positions(L) {
                let exact = Self.direct(u: uh, k: kh, t: t) + d[h] * uh[uh.startIndex + t]
                worst.double = max(worst.double, abs(yDouble[h * L + t] - exact) / scale)
                worst.float = max(worst.float, abs(Double(yFloat[h * L + t]) - exact) / scale)
            }
        }
        // Measured (L = 1, 4097, 2^22): Double 0, 2.2e-17, 6.0e-19 and Float 6.6e-8, 7.5e-9,
        // 4.9e-10 of Σ|k|·max|u| (the rounding grows with log n and √L, the scale with L).
        #expect(worst.double <= 1e-15, "Double error \(worst.double) at L = \(L)")
        #expect(worst.float <= 1e-6, "Float error \(worst.float) at L = \(L)")
    }

    /// S4D parameters for a grid of channels: every (Δ, Re λ) pair, each with `modes` modes of
    /// increasing frequency, in Double and rounded to `T`.
    struct S4DGrid {
        var channels: Int, modes: Int
        var logDt: [Double] = [], c: [Complex<Double>] = [], logAReal: [Double] = [], aImag: [Double] = [], b: [Complex<Double>] = []

        init(deltas: [Double], decays: [Double], frequencies: [Double], seed: UInt64) {
            (channels, modes) = (deltas.count * decays.count, frequencies.count)
            var rng = SplitMix64(seed: seed)
            func z() -> Complex<Double> { Complex(Double.random(in: -1 ..< 1, using: &rng), Double.random(in: -1 ..< 1, using: &rng)) }
            for delta in deltas {
                for decay in decays {
                    logDt.append(Double.log(delta))
                    for frequency in frequencies {
                        logAReal.append(Double.log(-decay)); aImag.append(frequency); c.append(z()); b.append(z())
                    }
                }
            }
        }

        /// The same values rounded to `T`, and read back in Double (what the reference uses).
        func rounded<T: FFTScalar>(_: T.Type) -> S4DGrid {
            var g = self
            func r(_ v: [Double]) -> [Double] { v.map { Double(T($0)) } }
            func r(_ v: [Complex<Double>]) -> [Complex<Double>] { v.map { Complex(Double(T($0.real)), Double(T($0.imaginary))) } }
            (g.logDt, g.c, g.logAReal, g.aImag, g.b) = (r(logDt), r(c), r(logAReal), r(aImag), r(b))
            return g
        }

        func kernel<T: FFTScalar>(_: T.Type, length L: Int, _ method: Discretization) throws -> [T] {
            func t(_ v: [Double]) -> [T] { v.map { T($0) } }
            func t(_ v: [Complex<Double>]) -> [Complex<T>] { v.map { Complex(T($0.real), T($0.imaginary)) } }
            var k = [T](repeating: .nan, count: channels * L)
            try S4DKernel<T>(channels: channels, modes: modes, discretization: method)
                .forward(length: L, logDt: t(logDt), c: t(c), logAReal: t(logAReal), aImag: t(aImag), b: t(b), k: &k)
            return k
        }

        /// e^{l·z} with l·z taken exactly: each part as its rounded product plus the product's
        /// remainder (a fused multiply-add), the remainder applied to first order. Rounding l·z
        /// instead would misplace the phase by up to 1e-9 radians at l = 2^22.
        static func power(_ z: Complex<Double>, _ l: Int) -> Complex<Double> {
            let n = Double(l)
            let (x, y) = (n * z.real, n * z.imaginary)
            let (dx, dy) = ((-x).addingProduct(n, z.real), (-y).addingProduct(n, z.imaginary))
            let scale = Double.exp(x) * (1 + dx)
            return Complex(scale * (Double.cos(y) - dy * Double.sin(y)), scale * (Double.sin(y) + dy * Double.cos(y)))
        }

        /// (K̄[h, l], Σ_n 2|C B B̄|) from the closed forms: ZOH Ā = e^{Δλ}, B̄ = (e^{Δλ} − 1)/λ;
        /// bilinear Ā = (1 + Δλ/2)/(1 − Δλ/2), B̄ = Δ/(1 − Δλ/2); each power e^{l·log Ā}.
        func exact(_ h: Int, _ l: Int, _ method: Discretization) -> (value: Double, scale: Double) {
            var (value, scale) = (0.0, 0.0)
            let delta = Double.exp(logDt[h])
            for n in 0 ..< modes {
                let i = h * modes + n
                let lambda = Complex(-Double.exp(logAReal[i]), aImag[i]), z = lambda.multiplied(by: delta)
                // expm1 and log1p: |Δλ| reaches 1e-8 here, where e^z − 1 and log(1 + z/2) lose half
                // their digits to cancellation.
                let (logA, bBar) = method == .zoh
                    ? (z, Complex.expMinusOne(z) / lambda)
                    : (Complex.log(onePlus: z.divided(by: 2)) - Complex.log(onePlus: -z.divided(by: 2)), Complex(delta) / (1 - z.divided(by: 2)))
                let w = c[i] * b[i] * bBar
                value += 2 * (w * Self.power(logA, l)).real
                scale += 2 * w.length
            }
            return (value, scale)
        }
    }

    @Test("S4D kernel: Δ from 1e-4 to 1, Re λ from −1e-4 to −100, Im λ to 200, ZOH and bilinear, L = 1, 4097, 2^22; N2 = 64 at 2^22",
          arguments: lengths)
    func s4d(length L: Int) throws {
        var grids = [S4DGrid(deltas: [1e-4, 1e-2, 1], decays: [-1e-4, -0.5, -100], frequencies: [0, 3, 60, 200], seed: 5)]
        if L == 1 << 22 { grids.append(S4DGrid(deltas: [1e-3], decays: [-0.5], frequencies: (0 ..< 64).map { Double.pi * Double($0) }, seed: 6)) }
        // The exact power agrees with a plain exponential where rounding l·z costs nothing.
        let z = Complex(-0.1, 2.0), plain = Complex.exp(z.multiplied(by: 3)), exact = S4DGrid.power(z, 3)
        #expect((plain - exact).length <= 1e-15, "power(z, 3) = \(exact), exp(3z) = \(plain)")
        var worst = (double: 0.0, float: 0.0)
        for grid in grids {
            for method in [Discretization.zoh, .bilinear] {
                let (gd, gf) = (grid.rounded(Double.self), grid.rounded(Float.self))
                let kd = try gd.kernel(Double.self, length: L, method), kf = try gf.kernel(Float.self, length: L, method)
                for h in 0 ..< grid.channels {
                    for l in Self.positions(L) {
                        let (ed, sd) = gd.exact(h, l, method), (ef, sf) = gf.exact(h, l, method)
                        worst.double = max(worst.double, abs(kd[h * L + l] - ed) / sd)
                        worst.float = max(worst.float, abs(Double(kf[h * L + l]) - ef) / sf)
                    }
                }
            }
        }
        // Measured (L = 1, 4097, 2^22): Double 0, 6.3e-15, 5.2e-15 and Float 4.8e-8, 1.8e-7,
        // 1.7e-7 (powers re-anchored every 64 steps, each anchor's l·log Ā carried exactly).
        #expect(worst.double <= 1e-12, "Double error \(worst.double) at L = \(L)")
        #expect(worst.float <= 1e-5, "Float error \(worst.float) at L = \(L)")
    }

    /// Complex matrices for the dense DPLR reference.
    typealias Matrix = [[Complex<Double>]]
    static func product(_ a: Matrix, _ b: Matrix) -> Matrix {
        let n = a.count
        return (0 ..< n).map { i in (0 ..< n).map { j in (0 ..< n).reduce(Complex<Double>.zero) { $0 + a[i][$1] * b[$1][j] } } }
    }
    static func power(_ a: Matrix, _ e: Int) -> Matrix {
        let n = a.count
        var (result, base, e) = ((0 ..< n).map { i in (0 ..< n).map { j in Complex<Double>(i == j ? 1 : 0) } }, a, e)
        while e > 0 {
            if e & 1 == 1 { result = product(result, base) }
            base = product(base, base); e >>= 1
        }
        return result
    }

    /// K̄[l] of one (copy 0, channel h) row by the dense bilinear system: Ā = (I − Δ/2·A)⁻¹(I +
    /// Δ/2·A), B̄ = (I − Δ/2·A)⁻¹Δ·B, C from C̃ = C(I − Ā^L), each Ā^l by repeated squaring.
    /// One channel and one SSM (`p` made with `channels: 1, ssms: 1`).
    static func denseS4(_ p: TestS4Parameters, modes N2: Int, rank R: Int, length L: Int, at ls: [Int]) -> [Double] {
        precondition(p.invDt.count == 1 && p.b.count == N2, "denseS4: one channel and one SSM")
        let (n, h, delta) = (2 * N2, 0, Double.exp(p.invDt[0]))
        func pair(_ v: (Int) -> Complex<Double>) -> [Complex<Double>] { (0 ..< N2).map(v) + (0 ..< N2).map { v($0).conjugate } }
        let lambda = pair { Complex(-Double.exp(p.aReal[h * N2 + $0]), -p.aImag[h * N2 + $0]) }
        var a = (0 ..< n).map { i in (0 ..< n).map { j in i == j ? lambda[i] : Complex<Double>.zero } }
        for r in 0 ..< R {
            let pr = pair { p.p[r * N2 + $0] }
            for i in 0 ..< n { for j in 0 ..< n { a[i][j] = a[i][j] - pr[i] * pr[j].conjugate } }
        }
        let minus = (0 ..< n).map { i in (0 ..< n).map { j in Complex(i == j ? 1 : 0) - a[i][j].multiplied(by: delta / 2) } }
        let columns = (0 ..< n).map { j in solveComplex(minus, (0 ..< n).map { i in Complex(i == j ? 1 : 0) + a[i][j].multiplied(by: delta / 2) }) }
        let aBar = (0 ..< n).map { i in (0 ..< n).map { j in columns[j][i] } }
        let bBar = solveComplex(minus, pair { p.b[h * N2 + $0] }.map { $0.multiplied(by: delta) })
        let aL = power(aBar, L)
        let c = solveComplex((0 ..< n).map { i in (0 ..< n).map { j in Complex(i == j ? 1 : 0) - aL[j][i] } }, pair { p.c[h * N2 + $0] })
        return ls.map { l in
            let al = power(aBar, l)
            return (0 ..< n).reduce(0.0) { sum, i in sum + (c[i] * (0 ..< n).reduce(Complex<Double>.zero) { $0 + al[i][$1] * bBar[$1] }).real }
        }
    }

    @Test("S4 kernel: dense DPLR powers (N2 = 2, rank 1 and 2, Δ 1e-3 and 0.1) and Float against Double (N2 = 32), L = 1, 4097, 2^22",
          arguments: lengths)
    func s4(length L: Int) throws {
        var worst = (dense: 0.0, float: 0.0)
        for (rank, logDelta, slow) in [(1, Double.log(1e-3), true), (2, Double.log(0.1), false)] {
            var p = TestS4Parameters(copies: 1, channels: 1, ssms: 1, modes: 2, rank: rank, seed: 51)
            p.invDt = [logDelta]
            if slow {
                // Decay ≈ 2e-7 per step: K̄ is still e^{-0.8} of its start at 2^22, Ā^L far from 0.
                p.aReal = p.aReal.map { _ in Double.log(1e-4) }
                p.p = p.p.map { $0.multiplied(by: 1e-2 / 0.3) }
            }
            let k = try p.kernel(try S4Kernel<Double>(copies: 1, channels: 1, ssms: 1, modes: 2, rank: rank), L)
            let ls = Self.positions(L), exact = Self.denseS4(p, modes: 2, rank: rank, length: L, at: ls)
            let scale = max(exact.map(abs).max()!, 1e-300)
            for (l, e) in zip(ls, exact) { worst.dense = max(worst.dense, abs(k[l] - e) / scale) }
        }
        let p = TestS4Parameters(copies: 1, channels: 2, ssms: 1, modes: 32, rank: 1, seed: 52)
        let kd = try p.kernel(try S4Kernel<Double>(copies: 1, channels: 2, ssms: 1, modes: 32, rank: 1), L)
        func f(_ v: [Double]) -> [Float] { v.map { Float($0) } }
        func f(_ v: [Complex<Double>]) -> [Complex<Float>] { v.map { Complex(Float($0.real), Float($0.imaginary)) } }
        var kf = [Float](repeating: .nan, count: 2 * L)
        try S4Kernel<Float>(copies: 1, channels: 2, ssms: 1, modes: 32, rank: 1)
            .forward(length: L, invDt: f(p.invDt), aReal: f(p.aReal), aImag: f(p.aImag), b: f(p.b), p: f(p.p), cTilde: f(p.c), k: &kf)
        worst.float = relativeError(kf, kd)
        // Measured (L = 1, 4097, 2^22): dense 1.8e-12, 4.7e-13, 9.5e-11; Float 6.3e-8, 2.4e-6,
        // 2.5e-6 (the parameters' rounding to Float included). A one-ulp change in Ā moves K̄[l]
        // by about l·ε relative, and the reference's squarings carry the same l·ε: 4.7e-10 at
        // l = 2^22, so the bound there is 2e-9, and 1e-10 at the shorter lengths.
        #expect(worst.dense <= (L > 1 << 16 ? 2e-9 : 1e-10), "Double against the dense system: \(worst.dense) at L = \(L)")
        #expect(worst.float <= 1e-5, "Float against Double: \(worst.float) at L = \(L)")
    }

    @Test("out of range: NaN or infinite inputs and outputs that overflow give typed errors naming the arguments")
    func refusals() throws {
        func argument(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch let SSMError.value(argument, _) { return argument } catch { return "\(error)" }
        }
        let shape = ConvolutionShape(batch: 1, channels: 1, length: 8)
        var y = [Float](repeating: 0, count: 8)
        let conv = try FFTConvolution<Float>(shape: shape)
        #expect(argument { try conv.forward(u: [1, 2, .nan, 4, 5, 6, 7, 8], kernel: [Float](repeating: 1, count: 8), y: &y) } == "u")
        #expect(argument { try conv.forward(u: [Float](repeating: 1, count: 8), kernel: [Float](repeating: .infinity, count: 8), y: &y) } == "k")
        #expect(argument { try conv.forward(u: [Float](repeating: 3e38, count: 8), kernel: [Float](repeating: 1, count: 8), y: &y) } == "u, k, D")
        var dU: [Float]? = [Float](repeating: 0, count: 8), dK: [Float]? = nil, dD: [Float]? = nil
        #expect(argument { try conv.backward(dY: [Float](repeating: .nan, count: 8), u: [Float](repeating: 1, count: 8),
                                             kernel: [Float](repeating: 1, count: 8), dU: &dU, dK: &dK, dD: &dD) } == "d_y")
        let s4d = try S4DKernel<Float>(channels: 1, modes: 1)
        var k = [Float](repeating: 0, count: 8)
        #expect(argument { try s4d.forward(length: 8, logDt: [.nan], c: [Complex(1, 0)], logAReal: [0], aImag: [0], k: &k) } == "log_dt")
        #expect(argument { try s4d.forward(length: 8, logDt: [0], c: [Complex(0, .nan)], logAReal: [0], aImag: [0], k: &k) } == "C")
        #expect(argument { try s4d.forward(length: 8, logDt: [0], c: [Complex(3e38, 0)], logAReal: [-5], aImag: [0], k: &k) }
                == "log_dt, C, log_A_real, A_imag, B")
        let s4 = try S4Kernel<Float>(copies: 1, channels: 1, ssms: 1, modes: 1, rank: 1)
        #expect(argument { try s4.forward(length: 8, invDt: [0], aReal: [0], aImag: [0], b: [Complex(1, 0)], p: [Complex(.infinity, 0)],
                                          cTilde: [Complex(1, 0)], k: &k) } == "P")
    }
}
