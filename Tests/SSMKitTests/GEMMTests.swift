import CSSMKitKernels
import Testing
@testable import SSMKit

/// The row-major GEMM under every linear layer, and the narrow-column kernel that replaces
/// OpenBLAS's allocating small-matrix kernels on AVX-512 cores, against the obvious triple loop.
@Suite("GEMM (the linear layers' products)")
struct GEMMTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let m, n, k: Int
        var testDescription: String { "\(m)×\(n)×\(k)" }
    }

    /// Shapes around OpenBLAS's small-kernel range (m·n·k ≤ 10^6) and its narrow last column
    /// blocks (n mod 16 in 1 … 8, n mod 8 in 1 … 4), with k over several of the narrow
    /// kernel's 256-long chunks, and the degenerate sizes.
    static let cases: [Case] = [(1, 1, 1), (1, 1, 40), (3, 5, 7), (16, 8, 32), (128, 1, 128), (100, 100, 100), (17, 24, 600),
                                (64, 2, 4096), (33, 130, 64), (200, 65, 77), (5, 16, 300), (40, 12, 257)].map { Case(m: $0.0, n: $0.1, k: $0.2) }

    /// c = alpha·op(a)·op(b) + beta·c by the triple loop, in Double, with Σ|terms| for the
    /// rounding bound; beta = 0 ignores c (it may hold NaN).
    static func reference(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double, _ a: [Double], _ lda: Int,
                          _ b: [Double], _ ldb: Int, _ beta: Double, _ c: [Double], _ ldc: Int) -> (value: [Double], size: [Double]) {
        var value = c, size = c
        for i in 0 ..< m {
            for j in 0 ..< n {
                var s = 0.0, t = 0.0
                for p in 0 ..< k {
                    let x = (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j])
                    s += x
                    t += abs(x)
                }
                let old = beta == 0 ? 0 : beta * c[i * ldc + j]
                value[i * ldc + j] = alpha * s + old
                size[i * ldc + j] = abs(alpha) * t + abs(old)
            }
        }
        return (value, size)
    }

    static func values(_ count: Int, _ rng: inout SplitMix64) -> [Double] { (0 ..< count).map { _ in Double.random(in: -1 ..< 1, using: &rng) } }

    @Test("Float.gemm and Double.gemm = the triple loop: every transpose, alpha and beta, leading dimensions, NaN in c ignored at beta 0",
          arguments: cases)
    func gemm(_ shape: Case) {
        let (m, n, k) = (shape.m, shape.n, shape.k)
        var rng = SplitMix64(seed: UInt64(m * 1_000_003 + n * 1009 + k))
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                let (lda, ldb, ldc) = ((ta ? m : k) + 1, (tb ? k : n) + 2, n + 3)
                let a = Self.values((ta ? k : m) * lda, &rng), b = Self.values((tb ? n : k) * ldb, &rng)
                var c = Self.values(m * ldc, &rng)
                if beta == 0 { c = c.map { _ in .nan } }
                let (expected, size) = Self.reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                var cd = c
                Double.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                            beta: beta, c: &cd, ldc: ldc)
                var cf = c.map(Float.init)
                let (af, bf) = (a.map(Float.init), b.map(Float.init))
                Float.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: Float(alpha), a: af, lda: lda, b: bf, ldb: ldb,
                           beta: Float(beta), c: &cf, ldc: ldc)
                // The inputs were Double; the Float product is held to its own inputs rounded to
                // Float, with the bound k·ε·Σ|terms| (plus the rounding of the result).
                let (exactF, sizeF) = Self.reference(ta, tb, m, n, k, alpha, af.map(Double.init), lda, bf.map(Double.init), ldb,
                                                     beta, cf.indices.map { Double(Float(c[$0])) }, ldc)
                for i in 0 ..< m {
                    for j in 0 ..< n {
                        let x = i * ldc + j
                        let label = "\(m)×\(n)×\(k) ta \(ta) tb \(tb) alpha \(alpha) beta \(beta) at (\(i), \(j))"
                        #expect(abs(cd[x] - expected[x]) <= Double(k + 2) * 2.3e-16 * size[x], "Double \(label): \(cd[x]) vs \(expected[x])")
                        #expect(abs(Double(cf[x]) - exactF[x]) <= Double(k + 2) * 1.2e-7 * sizeF[x], "Float \(label): \(cf[x]) vs \(exactF[x])")
                    }
                    // Columns beyond n belong to the caller: untouched.
                    for j in n ..< ldc {
                        let x = i * ldc + j
                        #expect(cd[x].bitPattern == c[x].bitPattern && cf[x].bitPattern == Float(c[x]).bitPattern, "padding at (\(i), \(j)) written")
                    }
                }
            }
        }
    }

    @Test("the narrow-column kernel = the triple loop for 1 … 16 columns and k across its 256-long chunks (every CPU)",
          arguments: [1, 2, 7, 255, 256, 257, 700])
    func narrowColumns(k: Int) {
        var rng = SplitMix64(seed: UInt64(k))
        for n in 1 ... Int(SSM_GEMM_MAX_COLUMNS) {
            let (m, lda, ldb, ldc) = (5, k + 1, n + 4, n + 2)
            let a = Self.values(m * lda, &rng), b = Self.values(k * ldb, &rng)
            for beta in [0.0, 0.5] {
                var c = Self.values(m * ldc, &rng)
                if beta == 0 { c = c.map { _ in .nan } }
                let (expected, size) = Self.reference(false, false, m, n, k, 1.5, a, lda, b, ldb, beta, c, ldc)
                var cd = c
                var cf = c.map(Float.init)
                let (af, bf) = (a.map(Float.init), b.map(Float.init))
                ssm_gemm_columns_f64(m, n, k, 1.5, a, lda, b, ldb, beta, &cd, ldc)
                ssm_gemm_columns_f32(m, n, k, 1.5, af, lda, bf, ldb, Float(beta), &cf, ldc)
                let (exactF, sizeF) = Self.reference(false, false, m, n, k, 1.5, af.map(Double.init), lda, bf.map(Double.init), ldb,
                                                     beta, cf.indices.map { Double(Float(c[$0])) }, ldc)
                for i in 0 ..< m {
                    for j in 0 ..< n {
                        let x = i * ldc + j
                        #expect(abs(cd[x] - expected[x]) <= Double(k + 2) * 2.3e-16 * size[x], "Double n \(n) beta \(beta) at (\(i), \(j))")
                        #expect(abs(Double(cf[x]) - exactF[x]) <= Double(k + 2) * 1.2e-7 * sizeF[x], "Float n \(n) beta \(beta) at (\(i), \(j))")
                    }
                    #expect(cd[i * ldc + n].bitPattern == c[i * ldc + n].bitPattern, "column n written")
                }
            }
        }
    }
}

extension FFTScalar {
    /// ``Float/gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)`` on arrays.
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self, a: [Self], lda: Int,
                     b: [Self], ldb: Int, beta: Self, c: inout [Self], ldc: Int) {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a.baseAddress!, lda: lda,
                         b: b.baseAddress!, ldb: ldb, beta: beta, c: c.baseAddress!, ldc: ldc)
                }
            }
        }
    }
}
