import CSSMKitBLAS
import ComplexModule
import RealModule

/// HiPPO measures (Gu et al. 2020) whose transition matrices initialize S4.
public enum HiPPOMeasure: String, Sendable, CaseIterable {
    /// Scaled Legendre.
    case legs
    /// Translated Legendre (halved for timescale, as the official `transition`).
    case legt
    /// Translated Laguerre.
    case lagt
    /// Fourier (the official `fout`): one endpoint subtracted as a rank-1 correction.
    case fout
}

/// HiPPO transition matrices and their normal-plus-low-rank (NPLR) form, all in Double.
///
/// Legend: N state size · R rank of the correction.
public enum HiPPO {
    /// A: (N, N) row-major and B: (N) of `measure` (official `transition`; LagT with β = 1 as
    /// the HiPPO paper and the earlier official code).
    /// - Throws: ``SSMError/value(argument:expected:)`` unless N ≥ 1 and N² is representable.
    public static func transition(_ measure: HiPPOMeasure, size N: Int) throws(SSMError) -> (a: [Double], b: [Double]) {
        guard N >= 1, !N.multipliedReportingOverflow(by: N).overflow else {
            throw SSMError.value(argument: "size", expected: "a state size N ≥ 1 whose N × N matrix fits in memory, got \(N)")
        }
        var a = [Double](repeating: 0, count: N * N)
        var b = [Double](repeating: 0, count: N)
        switch measure {
        case .legt:
            // A[i, j] = −½·√(2i+1)·√(2j+1)·(i < j ? (−1)^(i−j) : 1), B[i] = ½·√(2i+1).
            for i in 0 ..< N {
                for j in 0 ..< N {
                    let sign: Double = i < j && (j - i) % 2 == 1 ? -1 : 1
                    a[i * N + j] = -0.5 * (2 * Double(i) + 1).squareRoot() * (2 * Double(j) + 1).squareRoot() * sign
                }
                b[i] = 0.5 * (2 * Double(i) + 1).squareRoot()
            }
        case .legs:
            // A[i, j] = −√(2i+1)·√(2j+1) for i > j, −(i + 1) on the diagonal, 0 above; B[i] = √(2i+1).
            for i in 0 ..< N {
                for j in 0 ... i {
                    a[i * N + j] = i == j ? -Double(i + 1) : -(2 * Double(i) + 1).squareRoot() * (2 * Double(j) + 1).squareRoot()
                }
                b[i] = (2 * Double(i) + 1).squareRoot()
            }
        case .lagt:
            // A = I/2 − tril(1), B = 1.
            for i in 0 ..< N {
                for j in 0 ... i { a[i * N + j] = (i == j ? 0.5 : 0) - 1 }
                b[i] = 1
            }
        case .fout:
            // Off-diagonal frequencies d = (0, 0, 1, 0, 2, 0, 3, …): A = π·(−diag(d, 1) + diag(d, −1)) − B Bᵀ,
            // B = (1, 0, √2, 0, √2, …).
            let d: [Double] = (0 ..< N - 1).map { (i: Int) -> Double in i % 2 == 0 ? Double(i / 2) : 0 }
            for i in 0 ..< N - 1 {
                a[i * N + i + 1] = -Double.pi * d[i]
                a[(i + 1) * N + i] = Double.pi * d[i]
            }
            for i in stride(from: 0, to: N, by: 2) { b[i] = i == 0 ? 1 : 2.0.squareRoot() }
            for i in 0 ..< N { for j in 0 ..< N { a[i * N + j] -= b[i] * b[j] } }
        }
        return (a, b)
    }

    /// P: (R, N) with A + PᵀP normal (official `rank_correction`; LagT: P = √½·1).
    /// - Throws: when `rank` is below the measure's own rank (LegT needs 2).
    public static func rankCorrection(_ measure: HiPPOMeasure, size N: Int, rank: Int) throws(SSMError) -> [Double] {
        let needed = measure == .legt ? 2 : 1
        guard rank >= needed else {
            throw SSMError.option(name: "rank", expected: "at least \(needed) for \(measure.rawValue), got \(rank)")
        }
        var p = [Double](repeating: 0, count: rank * N)
        for n in 0 ..< N {
            switch measure {
            case .legs: p[n] = (0.5 + Double(n)).squareRoot()
            case .legt:
                // Even and odd rows of √(2n+1), halved like A: P0 on odd n, P1 on even n.
                let value = (1 + 2 * Double(n)).squareRoot() * 0.5.squareRoot()
                p[(n % 2 == 0 ? 1 : 0) * N + n] = value
            case .lagt: p[n] = 0.5.squareRoot()
            case .fout: p[n] = n == 0 ? 1 : (n % 2 == 0 ? 2.0.squareRoot() : 0)
            }
        }
        return p
    }

    /// The NPLR form of a HiPPO matrix: A = V (Λ − P̃ P̃*) V*, B̃ = V* B, keeping one eigenvalue
    /// of each conjugate pair (the N/2 with negative imaginary part), as the official `nplr`.
    public struct NPLR: Sendable {
        /// Λ: c(N/2), eigenvalues of the normal part A + PᵀP, ascending imaginary part.
        public var lambda: [Complex<Double>]
        /// P̃ = V* P: c(R, N/2).
        public var p: [Complex<Double>]
        /// B̃ = V* B with its imaginary part clipped to ±`bClip`: c(N/2).
        public var b: [Complex<Double>]
        /// V: c(N, N/2), the eigenvectors of the kept eigenvalues (V_full = [V, conj V] is unitary).
        public var v: [Complex<Double>]
    }

    /// Diagonalizes the normal part of `measure`'s A. The normal part is (mean of its diagonal)·I
    /// plus a skew-symmetric S; the eigenvalues of S come from the Hermitian −iS through LAPACK's
    /// `zheevd`. A zero eigenvalue pair (Fourier) gets the official code's explicit eigenvector.
    /// - Throws: for an odd or non-positive N, a rank below the measure's own, or LAPACK failure.
    public static func nplr(_ measure: HiPPOMeasure, size N: Int, rank: Int = 1, bClip: Double? = 2) throws(SSMError) -> NPLR {
        guard N >= 2, N % 2 == 0 else { throw SSMError.option(name: "state", expected: "an even N ≥ 2, got \(N)") }
        let (a, b) = try transition(measure, size: N)
        let p = try rankCorrection(measure, size: N, rank: rank)
        // AP = A + Σ_r P_rᵀ P_r.
        var ap = a
        for r in 0 ..< rank { for i in 0 ..< N { for j in 0 ..< N { ap[i * N + j] += p[r * N + i] * p[r * N + j] } } }
        let realPart = (0 ..< N).reduce(0) { $0 + ap[$1 * N + $1] } / Double(N)
        // M = −i·(AP − realPart·I): Hermitian (skew-symmetric part times −i); lower triangle used.
        var m = [Complex<Double>](repeating: .zero, count: N * N)
        for i in 0 ..< N { for j in 0 ..< N where i != j { m[i * N + j] = Complex(0, -ap[i * N + j]) } }
        var w = [Double](repeating: 0, count: N)
        let info = m.withUnsafeMutableBufferPointer { m in
            w.withUnsafeMutableBufferPointer { w in
                m.baseAddress!.withMemoryRebound(to: ssm_lapack_complex_double.self, capacity: N * N) { mp in
                    LAPACKE_zheevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "L")),
                                   Int32(N), mp, Int32(N), w.baseAddress!)
                }
            }
        }
        guard info == 0 else { throw SSMError.value(argument: "hippo", expected: "a diagonalizable matrix (LAPACK zheevd info \(info))") }
        // Eigenvalues come ascending; keep the N/2 with negative imaginary part.
        let half = N / 2
        var lambda = (0 ..< half).map { Complex(realPart, w[$0]) }
        var v = [Complex<Double>](repeating: .zero, count: N * half)
        for i in 0 ..< N { for k in 0 ..< half { v[i * half + k] = m[i * N + k] } }
        if half >= 2, lambda[half - 2].length <= 1e-4 {
            throw SSMError.value(argument: "hippo", expected: "at most one zero eigenvalue pair")
        }
        if lambda[half - 1].length < 1e-4 {
            // The zero pair (Fourier's constant mode) lives on the first two coordinates.
            for i in 0 ..< N { v[i * half + half - 1] = .zero }
            v[half - 1] = Complex(0.5.squareRoot(), 0)
            v[half + half - 1] = Complex(0, 0.5.squareRoot())
            lambda[half - 1] = Complex(realPart, 0)
        }
        // V* B, V* P.
        func project(_ x: ArraySlice<Double>) -> [Complex<Double>] {
            (0 ..< half).map { k in
                (0 ..< N).reduce(Complex<Double>.zero) { $0 + v[$1 * half + k].conjugate.multiplied(by: x[x.startIndex + $1]) }
            }
        }
        var bTilde = project(b[...])
        if let bClip {
            bTilde = bTilde.map { Complex($0.real, min(max($0.imaginary, -bClip), bClip)) }
        }
        let pTilde = (0 ..< rank).flatMap { r in project(p[(r * N) ..< ((r + 1) * N)]) }
        return NPLR(lambda: lambda, p: pTilde, b: bTilde, v: v)
    }
}
