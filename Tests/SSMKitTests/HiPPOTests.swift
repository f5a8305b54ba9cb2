import Testing
@testable import SSMKit

@Suite("HiPPO")
struct HiPPOTests {
    @Test("LegS: A = T M T⁻¹ of the HiPPO paper's closed form, B = √(2n+1)", arguments: [1, 2, 7, 64])
    func legsClosedForm(n: Int) throws {
        let (a, b) = try HiPPO.transition(.legs, size: n)
        // M[i][j] = −(2j+1) for i > j, −(i+1) on the diagonal; T = diag(√(2i+1)).
        for i in 0 ..< n {
            for j in 0 ..< n {
                let m: Double = i > j ? -(2 * Double(j) + 1) : (i == j ? -Double(i + 1) : 0)
                let expected = (2 * Double(i) + 1).squareRoot() * m / (2 * Double(j) + 1).squareRoot()
                #expect(abs(a[i * n + j] - expected) <= 1e-12 * max(1, abs(expected)), "N = \(n), A[\(i)][\(j)]")
            }
            #expect(b[i] == (2 * Double(i) + 1).squareRoot())
        }
    }

    @Test("a size below 1 or one whose N² overflows is refused, for every measure")
    func badSize() {
        for measure in HiPPOMeasure.allCases {
            for n in [0, -3, 1 << 33] {
                #expect(throws: SSMError.self, "\(measure) N = \(n)") { try HiPPO.transition(measure, size: n) }
            }
        }
    }

    @Test("A + PᵀP is (mean diagonal)·I plus a skew-symmetric matrix",
          arguments: [(HiPPOMeasure.legs, 1), (.legt, 2), (.lagt, 1), (.fout, 1)])
    func normalPart(_ measure: HiPPOMeasure, _ rank: Int) throws {
        let n = 16
        let (a, _) = try HiPPO.transition(measure, size: n)
        let p = try HiPPO.rankCorrection(measure, size: n, rank: rank)
        var ap = a
        for r in 0 ..< rank { for i in 0 ..< n { for j in 0 ..< n { ap[i * n + j] += p[r * n + i] * p[r * n + j] } } }
        let d = ap[0]
        for i in 0 ..< n {
            for j in 0 ..< n {
                let sym = ap[i * n + j] + ap[j * n + i] - (i == j ? 2 * d : 0)
                #expect(abs(sym) <= 1e-12, "\(measure): (A + PᵀP) + transpose at [\(i)][\(j)]")
            }
        }
    }

    @Test("NPLR: [V, conj V] unitary and 2·Re(V Λ V*) − P_origᵀP_orig = A",
          arguments: [(HiPPOMeasure.legs, 1, 64), (.legs, 2, 8), (.legt, 2, 16), (.lagt, 1, 16), (.fout, 1, 16), (.fout, 1, 2)])
    func nplrReconstructs(_ measure: HiPPOMeasure, _ rank: Int, _ n: Int) throws {
        let form = try HiPPO.nplr(measure, size: n, rank: rank)
        let (a, _) = try HiPPO.transition(measure, size: n)
        let half = n / 2
        let v = form.v
        func full(_ r: Int, _ k: Int) -> Complex<Double> { k < half ? v[r * half + k] : v[r * half + k - half].conjugate }
        for i in 0 ..< n {
            for j in 0 ..< n {
                let s = (0 ..< n).reduce(Complex<Double>.zero) { $0 + full($1, i).conjugate * full($1, j) }
                #expect((s - Complex(i == j ? 1 : 0)).length <= 1e-12, "\(measure) N = \(n): V*V at [\(i)][\(j)]")
            }
        }
        // The real rank correction P_orig = 2·Re(V P̃ᵀ) rebuilds A with the normal part.
        let pOriginal = (0 ..< rank).map { r in (0 ..< n).map { i in 2 * (0 ..< half).reduce(Complex<Double>.zero) { $0 + v[i * half + $1] * form.p[r * half + $1] }.real } }
        let scale = a.map(abs).max()!
        for i in 0 ..< n {
            for j in 0 ..< n {
                let normal = 2 * (0 ..< half).reduce(Complex<Double>.zero) { $0 + v[i * half + $1] * form.lambda[$1] * v[j * half + $1].conjugate }.real
                let correction = pOriginal.reduce(0) { $0 + $1[i] * $1[j] }
                #expect(abs(normal - correction - a[i * n + j]) <= 1e-10 * scale, "\(measure) N = \(n): A[\(i)][\(j)]")
            }
        }
        #expect(form.lambda.allSatisfy { $0.imaginary <= 1e-12 }, "kept eigenvalues have Im ≤ 0")
    }

    @Test("impossible options throw: odd N, LegT with rank 1")
    func errors() {
        #expect(throws: SSMError.self) { try HiPPO.nplr(.legs, size: 7) }
        #expect(throws: SSMError.self) { try HiPPO.nplr(.legt, size: 8, rank: 1) }
    }
}
