import Testing
import SSMKit
@testable import SSMTraining

@Suite("S4D layer")
struct S4DLayerTests {
    let B = 2, H = 3, N2 = 4, L = 17

    /// Random parameters (C of both signs, A_imag = π·n) and u, under the official names.
    func setUp() throws -> (S4DMixer<Double>, ParameterSet<Double>, [Double]) {
        var rng = SplitMix64(seed: 71)
        func r(_ n: Int, _ scale: Double = 1) -> [Double] { (0 ..< n).map { _ in scale * Double.random(in: -1 ..< 1, using: &rng) } }
        let mixer = try S4DMixer<Double>(width: H, state: 2 * N2)
        let values: [String: [Double]] = [
            "kernel.log_dt": (0 ..< H).map { _ in Double.random(in: Double.log(0.01) ..< Double.log(0.1), using: &rng) },
            "kernel.C": r(2 * H * N2), "kernel.log_A_real": r(H * N2, 0.5), "kernel.A_imag": (0 ..< H * N2).map { Double($0 % N2) * .pi },
            "D": r(H), "output_linear.0.weight": r(2 * H * H, 0.5), "output_linear.0.bias": r(2 * H, 0.1),
        ]
        let p = try mixer.parameters { (d: ParameterDeclaration) throws(SSMError) in values[d.name]! }
        return (mixer, p, r(B * H * L))
    }

    @Test("Double forward = a plain-loop layer: Vandermonde kernel, direct convolution, erf GELU, 1×1 conv, GLU")
    func forwardMatchesPlainLoops() throws {
        let (layer, q, u) = try setUp()
        let y = try layer.forward(u, batch: B, length: L, parameters: q).y
        let (logDt, c, logAReal, aImag) = (q["kernel.log_dt"], q["kernel.C"], q["kernel.log_A_real"], q["kernel.A_imag"])
        let (d, weight, bias) = (q["D"], q["output_linear.0.weight"], q["output_linear.0.bias"])
        var expected = [Double](repeating: 0, count: B * H * L)
        for b in 0 ..< B {
            var g = [[Double]](repeating: [Double](repeating: 0, count: L), count: H)
            for h in 0 ..< H {
                let delta = Double.exp(logDt[h])
                let k = (0 ..< L).map { l in
                    (0 ..< N2).reduce(0.0) { sum, n in
                        let lambda = Complex(-Double.exp(logAReal[h * N2 + n]), aImag[h * N2 + n])
                        let dl = lambda.multiplied(by: delta)
                        return sum + 2 * (Complex(c[2 * (h * N2 + n)], c[2 * (h * N2 + n) + 1]) * (Complex.exp(dl) - Complex(1)) / lambda * Complex.exp(dl.multiplied(by: Double(l)))).real
                    }
                }
                for t in 0 ..< L {
                    var z = d[h] * u[(b * H + h) * L + t]
                    for s in 0 ... t { z += k[t - s] * u[(b * H + h) * L + s] }
                    g[h][t] = z / 2 * (1 + Double.erf(z / 2.0.squareRoot()))
                }
            }
            for i in 0 ..< H {
                for t in 0 ..< L {
                    func a(_ o: Int) -> Double { bias[o] + (0 ..< H).reduce(0.0) { $0 + weight[o * H + $1] * g[$1][t] } }
                    expected[(b * H + i) * L + t] = a(i) / (1 + Double.exp(-a(H + i)))
                }
            }
        }
        let err = zip(y, expected).reduce(0.0) { max($0, abs($1.0 - $1.1)) } / expected.reduce(0.0) { max($0, abs($1)) }
        #expect(err <= 1e-12, "relative error \(err)")
    }

    @Test("backward: d_u and every parameter against central finite differences in Double")
    func backwardMatchesFiniteDifferences() throws {
        let (mixer, p, _) = try setUp()
        try expectMixerGradients(mixer, p, batch: B, length: L, seed: 72)
    }

    @Test("bad input: wrong parameter counts and a wrong u give typed errors")
    func badInput() throws {
        let (mixer, p, u) = try setUp()
        #expect(throws: SSMError.self) { try mixer.forward(Array(u.dropLast()), batch: B, length: L, parameters: p) }
        #expect(throws: SSMError.self) { try mixer.parameters { (d: ParameterDeclaration) throws(SSMError) in [Double](repeating: 0, count: d.count - 1) } }
        #expect(throws: SSMError.self) { try mixer.forward(u, batch: B, length: L, parameters: ParameterSet<Double>()) }
        #expect(throws: SSMError.self) { try S4DMixer<Double>(width: 0, state: 4) }
        #expect(throws: SSMError.self) { try S4DMixer<Double>(width: 2, state: 4, initialization: .legs) }
    }

    @Test("forward adding a residual: S4D and S4 add it in the GLU's pass with the bits of a separate addition; Mamba leaves it to the caller",
          arguments: [(2, 3, 17), (1, 4, 1), (3, 2, 100)])
    func residual(_ shape: (Int, Int, Int)) throws {
        let (B, H, L) = shape
        try residual(try S4DMixer<Float>(width: H, state: 4, threads: 2), B, L, fused: true)
        try residual(try S4Mixer<Float>(width: H, state: 4, threads: 2), B, L, fused: true)
        try residual(try S4DMixer<Double>(width: H, state: 4, threads: 2), B, L, fused: true)
        try residual(try MambaMixer<Float>(width: H, state: 4, threads: 2), B, L, fused: false)
    }

    private func residual<M: SequenceMixer>(_ mixer: M, _ B: Int, _ L: Int, fused: Bool) throws {
        let p = try mixer.initialParameters(seed: 5)
        var rng = SplitMix64(seed: 6)
        let n = B * L * mixer.width
        let u = (0 ..< n).map { _ in M.Scalar(Double.random(in: -1 ..< 1, using: &rng)) }
        let x = (0 ..< n).map { _ in M.Scalar(Double.random(in: -1 ..< 1, using: &rng)) }
        let plain = try mixer.forward(u, batch: B, length: L, parameters: p).y
        var y = [M.Scalar](repeating: .nan, count: n)
        let act = try mixer.makeActivations(batch: B, length: L)
        let added = try mixer.withParameterView(p) { (view: ParameterView<M.Scalar>) throws(SSMError) in
            try u.withUnsafeBufferPointer { (u: UnsafeBufferPointer<M.Scalar>) throws(SSMError) in
                try y.withUnsafeMutableBufferPointer { (y: inout UnsafeMutableBufferPointer<M.Scalar>) throws(SSMError) in
                    try mixer.forward(u, parameters: view, activations: act, adding: x, into: y)
                }
            }
        }
        #expect(added == fused, "\(M.self)")
        #expect(y == (fused ? zip(x, plain).map { $0 + $1 } : plain), "\(M.self) B=\(B) L=\(L)")
    }
}
