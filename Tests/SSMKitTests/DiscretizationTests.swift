import Testing
@testable import SSMKit

/// e^M by its Taylor series (30 terms) after scaling M to ‖M‖₁ ≤ ½, then squaring back: a
/// different algorithm from the Padé approximant it checks (truncation below 2^-30/30!).
func taylorExponential(_ m: [Double], _ n: Int) -> [Double] {
    let norm = (0 ..< n).map { j in (0 ..< n).reduce(0) { $0 + abs(m[$1 * n + j]) } }.max()!
    var s = 0
    while norm / Double(1 << s) > 0.5 { s += 1 }
    let a = m.map { $0 / Double(1 << s) }
    var result = (0 ..< n * n).map { $0 / n == $0 % n ? 1.0 : 0.0 }
    var term = result
    for k in 1 ... 30 {
        term = DenseDiscretization.multiply(term, a, n).map { $0 / Double(k) }
        for i in 0 ..< n * n { result[i] += term[i] }
    }
    for _ in 0 ..< s { result = DenseDiscretization.multiply(result, result, n) }
    return result
}

@Suite("discretization")
struct DiscretizationTests {
    @Test("matrix exponential = Taylor series reference; e^M·e^−M = I", arguments: [1, 3, 8, 33])
    func exponential(n: Int) throws {
        var rng = SplitMix64(seed: UInt64(n))
        for scale in [1e-3, 1.0, 20.0] {
            let m = (0 ..< n * n).map { _ in Double.random(in: -1 ..< 1, using: &rng) * scale / Double(n).squareRoot() }
            let e = try DenseDiscretization.matrixExponential(m, size: n)
            // Both algorithms square the scaled exponential ~log2‖M‖ times, and each squaring can
            // double the relative rounding error: the bound grows with ‖M‖₁ (Higham 2005, §3).
            let norm1 = (0 ..< n).map { j in (0 ..< n).reduce(0) { $0 + abs(m[$1 * n + j]) } }.max()!
            #expect(relativeError(e, taylorExponential(m, n)) <= 2e-13 * (1 + norm1), "N = \(n), scale \(scale)")
            // e^M·e^−M = I holds to eps·‖e^M‖·‖e^−M‖ (the product's own rounding), times N.
            let inverse = try DenseDiscretization.matrixExponential(m.map { -$0 }, size: n)
            let product = DenseDiscretization.multiply(e, inverse, n)
            let identity = (0 ..< n * n).map { $0 / n == $0 % n ? 1.0 : 0.0 }
            #expect(relativeError(product, identity) <= 1e-14 * Double(n) * max(1, maxAbs(e) * maxAbs(inverse)) * (1 + norm1),
                    "N = \(n), scale \(scale)")
        }
    }

    @Test("dense ZOH and bilinear of a block-diagonal real system = the diagonal complex formulas",
          arguments: Discretization.allCases)
    func denseMatchesDiagonal(_ method: Discretization) throws {
        // Modes λ = a ± ib as 2×2 blocks [[a, −b], [b, a]], B = (1, 0) per block.
        let modes: [Complex<Double>] = [Complex(-0.5, 3), Complex(-1e-6, 0.1), Complex(-2, 40)]
        let n = 2 * modes.count
        var a = [Double](repeating: 0, count: n * n), b = [Double](repeating: 0, count: n)
        for (k, l) in modes.enumerated() {
            let i = 2 * k
            a[i * n + i] = l.real; a[i * n + i + 1] = -l.imaginary
            a[(i + 1) * n + i] = l.imaginary; a[(i + 1) * n + i + 1] = l.real
            b[i] = 1
        }
        for delta in [1e-4, 0.01, 0.3] {
            let (aBar, bBar) = try DenseDiscretization.discretize(method, a: a, b: b, delta: delta)
            for (k, l) in modes.enumerated() {
                let mode = DiscreteMode(method, delta: delta, lambda: l)
                let i = 2 * k
                #expect(abs(aBar[i * n + i] - mode.aBar.real) <= 1e-13, "\(method) Δ = \(delta) λ = \(l): Re Ā")
                #expect(abs(aBar[(i + 1) * n + i] - mode.aBar.imaginary) <= 1e-13, "\(method) Δ = \(delta) λ = \(l): Im Ā")
                #expect(abs(bBar[i] - mode.bBarScale.real) <= 1e-13 * max(delta, 1e-300), "\(method) Δ = \(delta) λ = \(l): Re B̄")
                #expect(abs(bBar[i + 1] - mode.bBarScale.imaginary) <= 1e-13 * max(delta, 1e-300), "\(method) Δ = \(delta) λ = \(l): Im B̄")
            }
        }
    }

    @Test("ZOH stays defined for singular A (A = 0 gives Ā = I, B̄ = Δ·B)")
    func singular() throws {
        let (aBar, bBar) = try DenseDiscretization.discretize(.zoh, a: [0, 0, 0, 0], b: [1, 2], delta: 0.5)
        // Exact up to the rounding of one Padé solve.
        #expect(relativeError(aBar, [1, 0, 0, 1]) <= 1e-15)
        #expect(relativeError(bBar, [0.5, 1]) <= 1e-15)
        #expect(throws: SSMError.self) { try DenseDiscretization.discretize(.bilinear, a: [2, 0, 0, 2], b: [1, 1], delta: 1) }
        #expect(throws: SSMError.self) { try DenseDiscretization.discretize(.zoh, a: [1, 0, 0], b: [1, 1], delta: 1) }
    }

    @Test("HiPPO-LegS projects a signal online and reconstructs it from its state")
    func legsReconstruction() throws {
        // dc/dt = (1/t)(A c + B f(t)): step k with the bilinear rule at Δ = 1/k (the HiPPO
        // paper's LegS recurrence), N = 32 coefficients, L = 2000 samples on [0, 1]; then
        // f(x) ≈ Σ_n c_n √(2n+1) P_n(2x − 1). Measured (and reproduced by an independent NumPy
        // version to 1e-14): a smooth signal is rebuilt to 2.9e-4 everywhere; a chirp to 4.0e-3
        // on [0.05, 1] but 0.13 at x = 0, where the first, coarsest steps are remembered. The
        // bounds below leave a factor of ~2.5–3.5.
        let (n, steps) = (32, 2000)
        let (a, b) = try HiPPO.transition(.legs, size: n)
        var discretized: [(aBar: [Double], bBar: [Double])] = []
        for k in 1 ... steps { discretized.append(try DenseDiscretization.discretize(.bilinear, a: a, b: b, delta: 1 / Double(k))) }
        func reconstructionError(_ f: (Double) -> Double, from start: Double) -> Double {
            var c = [Double](repeating: 0, count: n)
            for k in 1 ... steps {
                let (aBar, bBar) = discretized[k - 1]
                let fk = f(Double(k) / Double(steps))
                c = (0 ..< n).map { i in (0 ..< n).reduce(0) { $0 + aBar[i * n + $1] * c[$1] } + bBar[i] * fk }
            }
            var worst = 0.0
            for j in 0 ... 200 where Double(j) / 200 >= start {
                let x = Double(j) / 200
                let s = 2 * x - 1
                var (p0, p1) = (1.0, s)
                var value = c[0] + c[1] * 3.0.squareRoot() * s
                for m in 1 ..< n - 1 {
                    let p2 = ((2 * Double(m) + 1) * s * p1 - Double(m) * p0) / Double(m + 1)
                    value += c[m + 1] * (2 * Double(m + 1) + 1).squareRoot() * p2
                    (p0, p1) = (p1, p2)
                }
                worst = max(worst, abs(value - f(x)))
            }
            return worst
        }
        let smooth = reconstructionError({ Double.sin(3 * $0) * Double.exp(-$0) }, from: 0)
        #expect(smooth <= 1e-3, "smooth signal: max error \(smooth)")
        let chirp = reconstructionError({ Double.sin(6 * $0) * Double.exp(-$0) + 0.5 * Double.cos(15 * $0 * $0) }, from: 0.05)
        #expect(chirp <= 1e-2, "chirp on [0.05, 1]: max error \(chirp)")
    }
}
