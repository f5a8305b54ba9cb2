import CSSMKitBLAS
import RealModule

/// Discretization of a dense continuous SSM x' = A x + B u (Design and Mathematics, "The state space model and its discretization"):
///
///     ZOH:      Ā = e^{ΔA},                 B̄ = (ΔA)⁻¹(e^{ΔA} − I)·ΔB
///     bilinear: Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A), B̄ = (I − Δ/2·A)⁻¹·ΔB
///
/// Matrices are row-major (N, N), vectors (N). Computed in Double: these are set-up steps
/// (S4's dense step mode, HiPPO projections), not hot loops, and Double is the cross-check
/// precision; Float callers round the results.
public enum DenseDiscretization {
    /// (Ā, B̄) of `method` for A: (N, N), B: (N) and step Δ.
    /// - Throws: ``SSMError`` for mismatched sizes, a non-positive or non-finite Δ, or a
    ///   singular I − Δ/2·A (bilinear).
    public static func discretize(_ method: Discretization, a: [Double], b: [Double], delta: Double) throws(SSMError) -> (aBar: [Double], bBar: [Double]) {
        let n = b.count
        guard n >= 1, a.count == n * n else {
            throw SSMError.shape(argument: "A", expected: "(N, N) with N = \(n) from B", actual: [a.count])
        }
        guard delta.isFinite, delta > 0 else { throw SSMError.value(argument: "delta", expected: "a finite Δ > 0, got \(delta)") }
        switch method {
        case .zoh:
            // e^{Δ·[[A, B], [0, 0]]} = [[Ā, B̄], [0, 1]]: one exponential gives both, and stays
            // well defined when A is singular (where (ΔA)⁻¹ would not exist).
            let m = n + 1
            var augmented = [Double](repeating: 0, count: m * m)
            for i in 0 ..< n {
                for j in 0 ..< n { augmented[i * m + j] = delta * a[i * n + j] }
                augmented[i * m + n] = delta * b[i]
            }
            let e = try matrixExponential(augmented, size: m)
            let aBar = (0 ..< n * n).map { e[($0 / n) * m + $0 % n] }
            let bBar = (0 ..< n).map { e[$0 * m + n] }
            return (aBar, bBar)
        case .bilinear:
            var left = [Double](repeating: 0, count: n * n)
            var right = [Double](repeating: 0, count: n * (n + 1))
            for i in 0 ..< n {
                for j in 0 ..< n {
                    left[i * n + j] = (i == j ? 1 : 0) - delta / 2 * a[i * n + j]
                    right[i * (n + 1) + j] = (i == j ? 1 : 0) + delta / 2 * a[i * n + j]
                }
                right[i * (n + 1) + n] = delta * b[i]
            }
            let x = try solve(left, right, size: n, columns: n + 1)
            return ((0 ..< n * n).map { x[($0 / n) * (n + 1) + $0 % n] }, (0 ..< n).map { x[$0 * (n + 1) + n] })
        }
    }

    /// e^M for M: (N, N) row-major, by scaling and squaring with the degree-13 Padé approximant
    /// (Higham 2005, "The scaling and squaring method for the matrix exponential revisited"):
    /// M is scaled by 2^-s until ‖M‖₁ ≤ θ₁₃ = 5.37, the approximant r₁₃ = (V − U)⁻¹(V + U) is
    /// formed with LAPACK's `dgesv`, and the result squared s times. Backward error ≤ 2^-53.
    public static func matrixExponential(_ m: [Double], size n: Int) throws(SSMError) -> [Double] {
        guard m.count == n * n, n >= 1 else { throw SSMError.shape(argument: "M", expected: "(N, N)", actual: [m.count]) }
        guard m.allSatisfy(\.isFinite) else { throw SSMError.value(argument: "M", expected: "finite entries") }
        let coefficients: [Double] = [
            64_764_752_532_480_000, 32_382_376_266_240_000, 7_771_770_303_897_600, 1_187_353_796_428_800,
            129_060_195_264_000, 10_559_470_521_600, 670_442_572_800, 33_522_128_640, 1_323_241_920,
            40_840_800, 960_960, 16_380, 182, 1,
        ]
        let theta13 = 5.371920351148152
        let norm = (0 ..< n).map { j in (0 ..< n).reduce(0) { $0 + abs(m[$1 * n + j]) } }.max() ?? 0
        let s = norm > theta13 ? Int(Double.log2(norm / theta13).rounded(.up)) : 0
        let scale = Double.pow(2, -Double(s))
        let a = m.map { $0 * scale }
        let identity = (0 ..< n * n).map { $0 / n == $0 % n ? 1.0 : 0.0 }
        let a2 = multiply(a, a, n), a4 = multiply(a2, a2, n), a6 = multiply(a4, a2, n)
        func combination(_ terms: [(Double, [Double])]) -> [Double] {
            var out = [Double](repeating: 0, count: n * n)
            for (c, x) in terms { for i in 0 ..< n * n { out[i] += c * x[i] } }
            return out
        }
        let b = coefficients
        // U = A·[A6(b13 A6 + b11 A4 + b9 A2) + b7 A6 + b5 A4 + b3 A2 + b1 I]
        let uInner = multiply(a6, combination([(b[13], a6), (b[11], a4), (b[9], a2)]), n)
        let u = multiply(a, combination([(1, uInner), (b[7], a6), (b[5], a4), (b[3], a2), (b[1], identity)]), n)
        // V = A6(b12 A6 + b10 A4 + b8 A2) + b6 A6 + b4 A4 + b2 A2 + b0 I
        let vInner = multiply(a6, combination([(b[12], a6), (b[10], a4), (b[8], a2)]), n)
        let v = combination([(1, vInner), (b[6], a6), (b[4], a4), (b[2], a2), (b[0], identity)])
        var r = try solve(combination([(1, v), (-1, u)]), combination([(1, v), (1, u)]), size: n, columns: n)
        for _ in 0 ..< s { r = multiply(r, r, n) }
        return r
    }

    /// X with A·X = B for A: (N, N) and B: (N, columns), row-major, through LAPACK's `dgesv`.
    static func solve(_ a: [Double], _ b: [Double], size n: Int, columns: Int) throws(SSMError) -> [Double] {
        var lu = a, x = b
        var pivots = [Int32](repeating: 0, count: n)
        let info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, Int32(n), Int32(columns), &lu, Int32(n), &pivots, &x, Int32(columns))
        guard info == 0 else {
            throw SSMError.value(argument: "A", expected: "a non-singular system (LAPACK dgesv info \(info))")
        }
        return x
    }

    /// X·Y for (N, N) row-major matrices, through BLAS `dgemm`.
    static func multiply(_ x: [Double], _ y: [Double], _ n: Int) -> [Double] {
        var z = [Double](repeating: 0, count: n * n)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, x, Int32(n), y, Int32(n), 0, &z, Int32(n))
        return z
    }
}
