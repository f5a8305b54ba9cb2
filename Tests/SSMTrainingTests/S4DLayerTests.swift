import Testing
import SSMKit
@testable import SSMTraining

@Suite("S4D layer")
struct S4DLayerTests {
    let B = 2, H = 3, N2 = 4, L = 17

    func setUp() throws -> (S4DLayer<Double>, S4DLayer<Double>.Parameters, [Double]) {
        var rng = SplitMix64(seed: 71)
        func r(_ n: Int, _ scale: Double = 1) -> [Double] { (0 ..< n).map { _ in scale * Double.random(in: -1 ..< 1, using: &rng) } }
        let p = S4DLayer<Double>.Parameters(
            logDt: (0 ..< H).map { _ in Double.random(in: Double.log(0.01) ..< Double.log(0.1), using: &rng) },
            c: (0 ..< H * N2).map { _ in Complex(Double.random(in: -1 ..< 1, using: &rng), Double.random(in: -1 ..< 1, using: &rng)) },
            logAReal: r(H * N2, 0.5), aImag: (0 ..< H * N2).map { Double($0 % N2) * .pi }, d: r(H), weight: r(2 * H * H, 0.5),
            bias: r(2 * H, 0.1))
        return (try S4DLayer<Double>(channels: H, modes: N2), p, r(B * H * L))
    }

    @Test("Double forward = a plain-loop layer: Vandermonde kernel, direct convolution, erf GELU, 1×1 conv, GLU")
    func forwardMatchesPlainLoops() throws {
        let (layer, p, u) = try setUp()
        let y = try layer.forward(u, batch: B, length: L, parameters: p).y
        var expected = [Double](repeating: 0, count: B * H * L)
        for b in 0 ..< B {
            var g = [[Double]](repeating: [Double](repeating: 0, count: L), count: H)
            for h in 0 ..< H {
                let delta = Double.exp(p.logDt[h])
                let k = (0 ..< L).map { l in
                    (0 ..< N2).reduce(0.0) { sum, n in
                        let lambda = Complex(-Double.exp(p.logAReal[h * N2 + n]), p.aImag[h * N2 + n])
                        let dl = lambda.multiplied(by: delta)
                        return sum + 2 * (p.c[h * N2 + n] * (Complex.exp(dl) - Complex(1)) / lambda * Complex.exp(dl.multiplied(by: Double(l)))).real
                    }
                }
                for t in 0 ..< L {
                    var z = p.d[h] * u[(b * H + h) * L + t]
                    for s in 0 ... t { z += k[t - s] * u[(b * H + h) * L + s] }
                    g[h][t] = z / 2 * (1 + Double.erf(z / 2.0.squareRoot()))
                }
            }
            for i in 0 ..< H {
                for t in 0 ..< L {
                    func a(_ o: Int) -> Double { p.bias[o] + (0 ..< H).reduce(0.0) { $0 + p.weight[o * H + $1] * g[$1][t] } }
                    expected[(b * H + i) * L + t] = a(i) / (1 + Double.exp(-a(H + i)))
                }
            }
        }
        let err = zip(y, expected).reduce(0.0) { max($0, abs($1.0 - $1.1)) } / expected.reduce(0.0) { max($0, abs($1)) }
        #expect(err <= 1e-12, "relative error \(err)")
    }

    @Test("backward: d_u and every parameter against central finite differences in Double")
    func backwardMatchesFiniteDifferences() throws {
        let (layer, p, u) = try setUp()
        var rng = SplitMix64(seed: 72)
        let dY = (0 ..< B * H * L).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let (_, act) = try layer.forward(u, batch: B, length: L, parameters: p)
        let (dU, g) = try layer.backward(dY: dY, activations: act, parameters: p)
        func loss(_ u: [Double], _ q: S4DLayer<Double>.Parameters) throws -> Double {
            zip(dY, try layer.forward(u, batch: B, length: L, parameters: q).y).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let eps = 1e-6
        func check(_ name: String, _ analytic: [Double], _ bumped: (Int, Double) throws -> Double) throws {
            let scale = max(1e-3, analytic.reduce(0) { max($0, abs($1)) })
            for i in analytic.indices {
                let fd = (try bumped(i, eps) - bumped(i, -eps)) / (2 * eps)
                #expect(abs(fd - analytic[i]) <= 1e-6 * scale, "d_\(name)[\(i)]: \(analytic[i]) vs \(fd)")
            }
        }
        try check("u", dU) { i, e in var v = u; v[i] += e; return try loss(v, p) }
        try check("log_dt", g.logDt) { i, e in var q = p; q.logDt[i] += e; return try loss(u, q) }
        try check("log_A_real", g.logAReal) { i, e in var q = p; q.logAReal[i] += e; return try loss(u, q) }
        try check("A_imag", g.aImag) { i, e in var q = p; q.aImag[i] += e; return try loss(u, q) }
        try check("C.re", g.c.map(\.real)) { i, e in var q = p; q.c[i] = q.c[i] + Complex(e, 0); return try loss(u, q) }
        try check("C.im", g.c.map(\.imaginary)) { i, e in var q = p; q.c[i] = q.c[i] + Complex(0, e); return try loss(u, q) }
        try check("D", g.d) { i, e in var q = p; q.d[i] += e; return try loss(u, q) }
        try check("weight", g.weight) { i, e in var q = p; q.weight[i] += e; return try loss(u, q) }
        try check("bias", g.bias) { i, e in var q = p; q.bias[i] += e; return try loss(u, q) }
    }

    @Test("bad input: wrong parameter counts and a wrong u give typed errors")
    func badInput() throws {
        let (layer, p, u) = try setUp()
        var q = p
        q.bias.removeLast()
        #expect(throws: SSMError.self) { try layer.forward(u, batch: B, length: L, parameters: q) }
        #expect(throws: SSMError.self) { try layer.forward(Array(u.dropLast()), batch: B, length: L, parameters: p) }
        #expect(throws: SSMError.self) { try S4DLayer<Double>(channels: 0, modes: 4) }
    }
}
