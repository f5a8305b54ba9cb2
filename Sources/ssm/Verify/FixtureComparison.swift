import SSMKit

/// max|a − e| / max(max|e|, scale), in Double: the error measure of the fixtures. `scale`
/// keeps tensors that are analytically ~0 (rounding noise only) from dividing by noise.
/// Counts that differ, and any non-finite value (actual or expected), give +∞.
func fixtureError(_ actual: [Double], _ expected: [Double], scale: Double) -> Double {
    guard actual.count == expected.count else { return .infinity }
    var diff = 0.0, magnitude = 0.0
    for (a, e) in zip(actual, expected) {
        if !a.isFinite || !e.isFinite { return .infinity }
        diff = max(diff, abs(a - e))
        magnitude = max(magnitude, abs(e))
    }
    let s = max(magnitude, scale)
    return s > 0 ? diff / s : diff
}

/// One compared quantity of a fixture case: a tensor, or an invariant of a HiPPO output.
struct FixtureCheck: Sendable {
    var what: String
    var error: Double
    var tolerance: Double
    var passed: Bool { error <= tolerance }
}

/// Compares what `ssm eval` produced for case `c` with the expected file: every expected
/// tensor (dtype, shape and values within its tolerance), or for HiPPO cases the invariants
/// of ``hippoErrors(_:_:)``. A tensor that is missing or of another dtype or shape fails.
func compareFixture(_ c: FixtureCase, produced: SafeTensorsFile, expected: SafeTensorsFile) throws -> [FixtureCheck] {
    if c.check == "hippo" {
        return try hippoErrors(produced, expected).map { FixtureCheck(what: $0.0, error: $0.1, tolerance: c.tolerance) }
    }
    return try expected.entries.map { entry in
        let tolerance = c.tolerance(for: entry.name)
        guard let got = produced.entry(entry.name) else {
            return FixtureCheck(what: "\(entry.name) (missing)", error: .infinity, tolerance: tolerance)
        }
        guard got.dtype == entry.dtype, got.shape == entry.shape else {
            return FixtureCheck(what: "\(entry.name) (dtype \(got.dtype.rawValue) shape \(got.shape), expected \(entry.dtype.rawValue) \(entry.shape))",
                                error: .infinity, tolerance: tolerance)
        }
        let error = fixtureError(try produced.tensor(entry.name, as: Double.self).scalars,
                                 try expected.tensor(entry.name, as: Double.self).scalars, scale: c.scales[entry.name] ?? 0)
        return FixtureCheck(what: entry.name, error: error, tolerance: tolerance)
    }
}

/// The checks of a HiPPO normal-plus-low-rank output, whose eigenvector phases and eigenvalue
/// order are not unique: A and B elementwise; the sorted eigenvalues Λ; [V, conj V] unitary;
/// the Gram matrix of the real rank correction P_orig = 2·Re(V P̃ᵀ); A rebuilt as
/// 2·Re(V Λ V*) − P_origᵀ P_orig; and B̃ = clip(V* B) in the produced V, where clip limits
/// the imaginary part to [−2, 2] as the official `nplr` does.
func hippoErrors(_ got: SafeTensorsFile, _ expected: SafeTensorsFile) throws -> [(String, Double)] {
    func values(_ f: SafeTensorsFile, _ name: String) throws -> [Double] { try f.tensor(name, as: Double.self).scalars }
    func complex(_ f: SafeTensorsFile, _ name: String) throws -> [Complex<Double>] { complexArray(try values(f, name)) }
    let a = try values(expected, "A"), b = try values(expected, "B")
    let n = Int(Double(a.count).squareRoot()), half = n / 2
    var errors = [("A", fixtureError(try values(got, "A"), a, scale: 0)), ("B", fixtureError(try values(got, "B"), b, scale: 0))]
    // Every count the invariants index by, checked first: a malformed file fails, never traps.
    let rank = try values(got, "P").count / max(1, 2 * half)
    let counts: [(String, SafeTensorsFile, Int)] = [
        ("Lambda", got, 2 * half), ("Lambda", expected, 2 * half), ("V", got, 2 * n * half), ("V", expected, 2 * n * half),
        ("B_dplr", got, 2 * half), ("P", got, 2 * rank * half), ("P", expected, 2 * rank * half),
    ]
    guard n >= 2, n * n == a.count, b.count == n, rank >= 1,
          try counts.allSatisfy({ try values($0.1, $0.0).count == $0.2 })
    else { return errors + [("tensor sizes", .infinity)] }
    let order: (Complex<Double>, Complex<Double>) -> Bool = { ($0.imaginary, $0.real) < ($1.imaginary, $1.real) }
    let lambda = try complex(got, "Lambda"), lambdaExpected = try complex(expected, "Lambda").sorted(by: order)
    let lambdaScale = lambdaExpected.map(\.length).max() ?? 1
    errors.append(("Lambda sorted", zip(lambda.sorted(by: order), lambdaExpected).map { ($0 - $1).length }.max()! / lambdaScale))
    let v = try complex(got, "V")
    // [V, conj V]* [V, conj V] = I.
    var unitary = 0.0
    for i in 0 ..< n {
        for j in 0 ..< n {
            var s = Complex<Double>.zero
            for r in 0 ..< n {
                let x = i < half ? v[r * half + i] : v[r * half + i - half].conjugate
                let y = j < half ? v[r * half + j] : v[r * half + j - half].conjugate
                s = s + x.conjugate * y
            }
            unitary = max(unitary, (s - Complex(i == j ? 1 : 0)).length)
        }
    }
    errors.append(("V unitary", unitary))
    func gram(_ f: SafeTensorsFile) throws -> [Double] {
        let vv = try complex(f, "V"), p = try complex(f, "P")
        // P_orig[r][i] = 2·Re Σ_k V[i][k] P̃[r][k]; Gram = P_origᵀ P_orig.
        let original = (0 ..< rank).map { r in (0 ..< n).map { i in 2 * (0 ..< half).reduce(Complex<Double>.zero) { $0 + vv[i * half + $1] * p[r * half + $1] }.real } }
        return (0 ..< n * n).map { ij in original.reduce(0) { $0 + $1[ij / n] * $1[ij % n] } }
    }
    let gGot = try gram(got), gExpected = try gram(expected)
    errors.append(("P Gram", fixtureError(gGot, gExpected, scale: 0)))
    var rebuilt = [Double](repeating: 0, count: n * n)
    for i in 0 ..< n {
        for j in 0 ..< n {
            let s = (0 ..< half).reduce(Complex<Double>.zero) { $0 + v[i * half + $1] * lambda[$1] * v[j * half + $1].conjugate }
            rebuilt[i * n + j] = 2 * s.real - gGot[i * n + j]
        }
    }
    errors.append(("A rebuilt", fixtureError(rebuilt, a, scale: 0)))
    let bTilde = try complex(got, "B_dplr")
    let bScale = try complex(expected, "B_dplr").map(\.length).max() ?? 1
    var bErr = 0.0
    for k in 0 ..< half {
        var s = (0 ..< n).reduce(Complex<Double>.zero) { $0 + v[$1 * half + k].conjugate.multiplied(by: b[$1]) }
        s = Complex(s.real, min(max(s.imaginary, -2), 2))
        bErr = max(bErr, (s - bTilde[k]).length / bScale)
    }
    errors.append(("B_dplr", bErr))
    return errors
}
