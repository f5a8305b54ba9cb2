import Testing
@testable import SSMKit

/// Seeded S4D parameters with the official init's ranges: Δ log-uniform in [1e-3, 1e-1],
/// Re λ = −0.5 ± 0.25 (through log_A_real), Im λ ∈ [0, π·N2), C and B of unit scale.
struct TestS4DParameters<T: FFTScalar> {
    var logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], b: [Complex<T>]?

    init(channels H: Int, modes N2: Int, withB: Bool, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        func u(_ lo: Double, _ hi: Double) -> T { T(Double.random(in: lo ..< hi, using: &rng)) }
        logDt = (0 ..< H).map { _ in u(.log(1e-3), .log(1e-1)) }
        c = (0 ..< H * N2).map { _ in Complex(u(-1, 1), u(-1, 1)) }
        logAReal = (0 ..< H * N2).map { _ in T(Double.log(Double(u(0.25, 0.75)))) }
        aImag = (0 ..< H * N2).map { n in T(Double.pi) * T(n % N2) + u(-0.5, 0.5) }
        b = withB ? (0 ..< H * N2).map { _ in Complex(u(-1, 1), u(-1, 1)) } : nil
    }
}

struct S4DCase: CustomStringConvertible, Sendable {
    var H: Int, N2: Int, L: Int, method: Discretization, withB: Bool
    var description: String { "H=\(H) N2=\(N2) L=\(L) \(method)\(withB ? " +B" : "")" }
}

let s4dSweep: [S4DCase] = [
    S4DCase(H: 1, N2: 1, L: 1, method: .zoh, withB: false),
    S4DCase(H: 2, N2: 3, L: 2, method: .bilinear, withB: true),
    S4DCase(H: 3, N2: 4, L: 63, method: .zoh, withB: true),
    S4DCase(H: 1, N2: 16, L: 64, method: .bilinear, withB: false),
    S4DCase(H: 2, N2: 8, L: 65, method: .zoh, withB: false),
    S4DCase(H: 2, N2: 32, L: 777, method: .bilinear, withB: true),
    S4DCase(H: 1, N2: 16, L: 4097, method: .zoh, withB: true),
]

@Suite("S4D kernel")
struct S4DKernelTests {
    @Test("Double: Vandermonde kernel = exact-exponential reference to 1e-12", arguments: s4dSweep)
    func forwardDouble(_ c: S4DCase) throws {
        let p = TestS4DParameters<Double>(channels: c.H, modes: c.N2, withB: c.withB, seed: 1)
        let kernel = try S4DKernel<Double>(channels: c.H, modes: c.N2, discretization: c.method)
        var k = [Double](repeating: .nan, count: c.H * c.L)
        try kernel.forward(length: c.L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b, k: &k)
        let reference = kernel.reference(length: c.L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b)
        // 64 multiplications between exact anchors: ~64 ulps of error per power at most.
        #expect(relativeError(k, reference) <= 1e-12, "\(c)")
    }

    @Test("Vandermonde kernel = C̄ Ā^l B̄ by explicit powers of the dense (conjugate-pair) system",
          arguments: s4dSweep.filter { $0.L <= 777 })
    func matrixPowers(_ c: S4DCase) throws {
        let p = TestS4DParameters<Double>(channels: c.H, modes: c.N2, withB: c.withB, seed: 2)
        let kernel = try S4DKernel<Double>(channels: c.H, modes: c.N2, discretization: c.method)
        var k = [Double](repeating: .nan, count: c.H * c.L)
        try kernel.forward(length: c.L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b, k: &k)
        for h in 0 ..< c.H {
            // The full N = 2·N2 system: modes λ and conj(λ), C and conj(C), B̄ and conj(B̄).
            var aBar: [Complex<Double>] = [], bBar: [Complex<Double>] = [], cFull: [Complex<Double>] = []
            for n in 0 ..< c.N2 {
                let delta = Double.exp(p.logDt[h])
                let lambda = Complex(-Double.exp(p.logAReal[h * c.N2 + n]), p.aImag[h * c.N2 + n])
                let (a, bb) = c.method == .zoh
                    ? (Complex.exp(lambda.multiplied(by: delta)), (Complex.exp(lambda.multiplied(by: delta)) - 1) / lambda)
                    : ((1 + lambda.multiplied(by: delta / 2)) / (1 - lambda.multiplied(by: delta / 2)),
                       Complex(delta) / (1 - lambda.multiplied(by: delta / 2)))
                let bn = bb * (p.b?[h * c.N2 + n] ?? 1)
                aBar += [a, a.conjugate]; bBar += [bn, bn.conjugate]
                cFull += [p.c[h * c.N2 + n], p.c[h * c.N2 + n].conjugate]
            }
            // x_l = Ā^l B̄ by repeated multiplication with the (diagonal) matrix; K̄_l = C x_l.
            var x = bBar
            for l in 0 ..< c.L {
                let kl = zip(cFull, x).reduce(Complex<Double>.zero) { $0 + $1.0 * $1.1 }
                #expect(abs(kl.imaginary) <= 1e-12 * max(1, kl.length), "\(c): imaginary part at l = \(l)")
                #expect(abs(kl.real - k[h * c.L + l]) <= 1e-10 * max(1, maxAbs(k)), "\(c): h = \(h), l = \(l)")
                x = zip(aBar, x).map { $0 * $1 }
            }
        }
    }

    @Test("Float: error against the Double reference stays within 1e-5 relative up to L = 2^20, anchored every 1 to 1024 steps",
          arguments: [1, 8, 64, 256, 1024])
    func longFloat(anchor: Int) throws {
        // Slowly decaying modes (Δ·Re λ ≈ −1e-6) keep the kernel large out to l = 2^20, where
        // unanchored repeated multiplication in Float would be off by ~1e-2.
        let (H, N2, L) = (1, 4, 1 << 20)
        let logDt: [Float] = [Float(Double.log(1e-4))]
        let c: [Complex<Float>] = [Complex(1, 0.5), Complex(-0.3, 0.2), Complex(0.7, -0.1), Complex(0.2, 0.9)]
        let logAReal: [Float] = [-4.6, -3.0, -2.3, -5.0].map(Float.init)
        let aImag: [Float] = [0.7, 31.0, 2.5, 12.0]
        let kernel = try S4DKernel<Float>(channels: H, modes: N2, discretization: .zoh, anchorInterval: anchor)
        var k = [Float](repeating: .nan, count: H * L)
        try kernel.forward(length: L, logDt: logDt, c: c, logAReal: logAReal, aImag: aImag, k: &k)
        let reference = kernel.reference(length: L, logDt: logDt, c: c, logAReal: logAReal, aImag: aImag)
        let err = relativeError(k, reference)
        // Measured: 1.1e-7 (1), 1.4e-7 (8), 1.9e-7 (64), 4.6e-7 (256), 1.1e-6 (1024). The bound is
        // 9× the worst of them; powers that drifted without anchors would be off by ~1e-2.
        #expect(err <= 1e-5, "relative error \(err) at L = 2^20 (\(anchor)-step anchors)")
        #expect(abs(reference[L - 1]) > 1e-3 * maxAbs(reference), "the kernel is still large at l = L − 1")
    }

    @Test("Double backward = central finite differences for every parameter", arguments: s4dSweep.filter { $0.L <= 777 })
    func backwardFiniteDifferences(_ c: S4DCase) throws {
        let p = TestS4DParameters<Double>(channels: c.H, modes: c.N2, withB: c.withB, seed: 3)
        let kernel = try S4DKernel<Double>(channels: c.H, modes: c.N2, discretization: c.method)
        var rng = SplitMix64(seed: 4)
        let dK: [Double] = .random(c.H * c.L, &rng)
        func loss(_ p: TestS4DParameters<Double>) throws -> Double {
            var k = [Double](repeating: 0, count: c.H * c.L)
            try kernel.forward(length: c.L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b, k: &k)
            return dot(dK, k)
        }
        let n = c.H * c.N2
        var dLogDt = [Double](repeating: 0, count: c.H), dLogAReal = [Double](repeating: 0, count: n)
        var dAImag = [Double](repeating: 0, count: n), dC = [Complex<Double>](repeating: .zero, count: n)
        var dB: [Complex<Double>]? = c.withB ? [Complex<Double>](repeating: .zero, count: n) : nil
        try kernel.backward(length: c.L, dK: dK, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b,
                            dLogDt: &dLogDt, dC: &dC, dLogAReal: &dLogAReal, dAImag: &dAImag, dB: &dB)
        // Central differences: truncation O(eps²·f''') plus rounding ~1e-16·Σ|dK·k|/eps; with
        // eps = 1e-6 both stay below 1e-7 relative to the gradient scale.
        let eps = 1e-6
        func fd(_ bump: (inout TestS4DParameters<Double>, Double) -> Void) throws -> Double {
            var up = p, down = p
            bump(&up, eps); bump(&down, -eps)
            return (try loss(up) - loss(down)) / (2 * eps)
        }
        let scale = max(1, maxAbs(dLogDt), maxAbs(dLogAReal), maxAbs(dAImag))
        func expectClose(_ analytic: Double, _ numeric: Double, _ what: String) {
            #expect(abs(analytic - numeric) <= 1e-6 * scale, "\(c): \(what): \(analytic) vs \(numeric)")
        }
        for h in 0 ..< c.H { expectClose(dLogDt[h], try fd { $0.logDt[h] += $1 }, "d_log_dt[\(h)]") }
        for i in [0, n / 2, n - 1] {
            expectClose(dLogAReal[i], try fd { $0.logAReal[i] += $1 }, "d_log_A_real[\(i)]")
            expectClose(dAImag[i], try fd { $0.aImag[i] += $1 }, "d_A_imag[\(i)]")
            expectClose(dC[i].real, try fd { $0.c[i] = $0.c[i] + Complex($1, 0) }, "d_C[\(i)].re")
            expectClose(dC[i].imaginary, try fd { $0.c[i] = $0.c[i] + Complex(0, $1) }, "d_C[\(i)].im")
            if let dB {
                expectClose(dB[i].real, try fd { $0.b![i] = $0.b![i] + Complex($1, 0) }, "d_B[\(i)].re")
                expectClose(dB[i].imaginary, try fd { $0.b![i] = $0.b![i] + Complex(0, $1) }, "d_B[\(i)].im")
            }
        }
    }

    @Test("wrong parameter counts throw errors naming the parameter")
    func errors() throws {
        let kernel = try S4DKernel<Double>(channels: 2, modes: 3)
        var k = [Double](repeating: 0, count: 20)
        #expect(throws: SSMError.self) {
            try kernel.forward(length: 10, logDt: [0], c: [Complex<Double>](repeating: 1, count: 6),
                               logAReal: [Double](repeating: 0, count: 6), aImag: [Double](repeating: 0, count: 6), k: &k)
        }
        do {
            try kernel.forward(length: 10, logDt: [0, 0], c: [Complex<Double>](repeating: 1, count: 5),
                               logAReal: [Double](repeating: 0, count: 6), aImag: [Double](repeating: 0, count: 6), k: &k)
            Issue.record("a short C was accepted")
        } catch { #expect("\(error)".hasPrefix("C:")) }
        #expect(throws: SSMError.self) { try S4DKernel<Float>(channels: 0, modes: 3) }
    }
}
