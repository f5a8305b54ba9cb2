import CSSMKitKernels
import Testing
@testable import SSMKit

/// The C loops of the S4 kernel's backward (cauchy_adjoint.c) against the plain Complex<Double>
/// loops they stand for, bit for bit: same products, same divisions, same order of every sum.
@Suite("S4 kernel adjoint sums (C) = the plain Complex<Double> loops")
struct CauchyAdjointTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let nodes, modes, pairs: Int
        var testDescription: String { "nodes \(nodes), modes \(modes), pairs \(pairs)" }
    }

    static let cases = [Case(nodes: 1, modes: 1, pairs: 1), Case(nodes: 7, modes: 5, pairs: 4), Case(nodes: 9, modes: 8, pairs: 9),
                        Case(nodes: 33, modes: 32, pairs: 4), Case(nodes: 17, modes: 13, pairs: 1)]

    func same(_ a: Double, _ b: Double) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    @Test("sums and accumulation", arguments: cases)
    func bitForBit(_ c: Case) throws {
        let (J, N, P) = (c.nodes, c.modes, c.pairs)
        let stride = (N + 7) / 8 * 8
        var rng = SplitMix64(seed: UInt64(J * 1000 + N * 10 + P))
        func u(_ lo: Double, _ hi: Double) -> Double { Double.random(in: lo ..< hi, using: &rng) }
        var g = (0 ..< J).map { _ in Complex(u(-3, 3), u(-40, 40)) }
        var lambda = (0 ..< N).map { _ in Complex(-u(0.01, 2), u(-30, 30)) }
        let v = (0 ..< P * N).map { _ in Complex(u(-1, 1), u(-1, 1)) }
        let e = (0 ..< J * P).map { _ in Complex(u(-1, 1), u(-1, 1)) }
        // Lanes whose |g − λ|² is not a normal number take swift-numerics' rescaled division:
        // g = λ (w = 0), g − λ around 1e-160 (|w|² subnormal), around 1e160 (|w|² overflows) and
        // around 1e-308 (w itself below the normal range: swift-numerics scales it up first).
        if J >= 7 {
            (lambda[1], lambda[N - 1]) = (Complex(-Double.leastNormalMagnitude / 2, Double.leastNormalMagnitude / 4), Complex(-1e-160, 3e-161))
            (g[1], g[3], g[5]) = (lambda[0], .zero, Complex(1e160, 2e159))
        }
        // The plain loops.
        var inv = [Complex<Double>](repeating: .zero, count: J * N), invConj = inv
        var r = [Complex<Double>](repeating: .zero, count: J * P), dg = r
        for j in 0 ..< J {
            for n in 0 ..< N {
                inv[j * N + n] = Complex(1) / (g[j] - lambda[n])
                invConj[j * N + n] = Complex(1) / (g[j] - lambda[n].conjugate)
            }
            for p in 0 ..< P {
                var (sum, d) = (Complex<Double>.zero, Complex<Double>.zero)
                for n in 0 ..< N {
                    let (vn, i1, i2) = (v[p * N + n], inv[j * N + n], invConj[j * N + n])
                    sum = sum + vn * i1 + vn.conjugate * i2
                    d = d + vn * i1 * i1 + vn.conjugate * i2 * i2
                }
                (r[j * P + p], dg[j * P + p]) = (sum, d)
            }
        }
        var uSum = [Complex<Double>](repeating: .zero, count: P * N), wSum = uSum
        var xLambda = [Complex<Double>](repeating: .zero, count: N), yLambda = xLambda
        for j in 0 ..< J {
            for p in 0 ..< P {
                for n in 0 ..< N {
                    let (exy, vn, i1, i2) = (e[j * P + p], v[p * N + n], inv[j * N + n], invConj[j * N + n])
                    uSum[p * N + n] = uSum[p * N + n] + exy * i1
                    wSum[p * N + n] = wSum[p * N + n] + exy * i2
                    xLambda[n] = xLambda[n] + exy * vn * i1 * i1
                    yLambda[n] = yLambda[n] + exy * vn.conjugate * i2 * i2
                }
            }
        }
        // The C loops, mode rows padded to `stride`.
        let (gRe, gIm) = (g.map(\.rawStorage.x), g.map(\.rawStorage.y))
        let (lRe, lIm) = (lambda.map(\.rawStorage.x), lambda.map(\.rawStorage.y))
        var (vRe, vIm) = ([Double](repeating: 0, count: P * stride), [Double](repeating: 0, count: P * stride))
        for p in 0 ..< P { for n in 0 ..< N { (vRe[p * stride + n], vIm[p * stride + n]) = v[p * N + n].rawStorage } }
        let (eRe, eIm) = (e.map(\.rawStorage.x), e.map(\.rawStorage.y))
        var (iRe, iIm, cRe, cIm) = ([Double](repeating: .nan, count: J * stride), [Double](repeating: .nan, count: J * stride),
                                    [Double](repeating: .nan, count: J * stride), [Double](repeating: .nan, count: J * stride))
        var (rRe, rIm, dRe, dIm) = ([Double](repeating: 0, count: J * P), [Double](repeating: 0, count: J * P),
                                    [Double](repeating: 0, count: J * P), [Double](repeating: 0, count: J * P))
        var work = [Double](repeating: 0, count: 32 * stride)
        ssm_cauchy_adjoint_sums_f64(J, gRe, gIm, N, stride, lRe, lIm, P, vRe, vIm, &iRe, &iIm, &cRe, &cIm, &rRe, &rIm, &dRe, &dIm, &work)
        var (uRe, uIm, wRe, wIm) = ([Double](repeating: .nan, count: P * stride), [Double](repeating: .nan, count: P * stride),
                                    [Double](repeating: .nan, count: P * stride), [Double](repeating: .nan, count: P * stride))
        var (xRe, xIm, yRe, yIm) = ([Double](repeating: .nan, count: stride), [Double](repeating: .nan, count: stride),
                                    [Double](repeating: .nan, count: stride), [Double](repeating: .nan, count: stride))
        ssm_cauchy_adjoint_accumulate_f64(J, stride, P, eRe, eIm, vRe, vIm, iRe, iIm, cRe, cIm, &uRe, &uIm, &wRe, &wIm, &xRe, &xIm, &yRe, &yIm)
        func expectSame(_ z: Complex<Double>, _ re: Double, _ im: Double, _ what: String) {
            let (x, y) = z.rawStorage  // `real` and `imaginary` are NaN for any non-finite value
            #expect(same(x, re) && same(y, im), "\(c) \(what): (\(x), \(y)) vs (\(re), \(im))")
        }
        for j in 0 ..< J {
            for n in 0 ..< N {
                expectSame(inv[j * N + n], iRe[j * stride + n], iIm[j * stride + n], "inv[\(j), \(n)]")
                expectSame(invConj[j * N + n], cRe[j * stride + n], cIm[j * stride + n], "inv_conj[\(j), \(n)]")
            }
            for n in N ..< stride {
                let i = j * stride + n
                #expect(iRe[i] == 0 && iIm[i] == 0 && cRe[i] == 0 && cIm[i] == 0, "padding [\(j), \(n)]")
            }
            for p in 0 ..< P {
                expectSame(r[j * P + p], rRe[j * P + p], rIm[j * P + p], "r[\(j), \(p)]")
                expectSame(dg[j * P + p], dRe[j * P + p], dIm[j * P + p], "dg[\(j), \(p)]")
            }
        }
        for p in 0 ..< P {
            for n in 0 ..< N {
                expectSame(uSum[p * N + n], uRe[p * stride + n], uIm[p * stride + n], "u[\(p), \(n)]")
                expectSame(wSum[p * N + n], wRe[p * stride + n], wIm[p * stride + n], "w[\(p), \(n)]")
            }
        }
        for n in 0 ..< N {
            expectSame(xLambda[n], xRe[n], xIm[n], "x_lambda[\(n)]")
            expectSame(yLambda[n], yRe[n], yIm[n], "y_lambda[\(n)]")
        }
        if J >= 7 {
            // The rescaled lanes hold what they should: 1/0 = ∞, and finite inverses elsewhere.
            #expect(iRe[1 * stride] == .infinity)
            #expect(iRe[3 * stride + N - 1].isFinite && iRe[5 * stride].isFinite && iRe[5 * stride] != 0)
            #expect(iRe[3 * stride + 1].isFinite && abs(iRe[3 * stride + 1]) > 1e300)
        }
    }
}
