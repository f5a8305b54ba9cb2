import Foundation
import Testing
@testable import SSMKit

/// The operations `ssm eval` implements so far; their fixtures must all pass.
let implementedOperations = [
    "fftconv", "s4d-kernel", "hippo", "s4d-recurrent", "s4-kernel", "s4-recurrent", "selective-scan", "mamba", "s4d-layer",
]

@Suite("fixtures from the official PyTorch code, through ssm eval")
struct FixtureTests {
    static let cases = implementedOperations.flatMap { FixtureCase.all(op: $0) }

    @Test("the fixture folder is present and lists cases for every implemented operation")
    func fixturesPresent() {
        for op in implementedOperations {
            #expect(!FixtureCase.all(op: op).isEmpty, "no \(op) cases under \(referenceDirectory); set SSMKIT_REFERENCE_DIR")
        }
    }

    @Test("each fixture's outputs and gradients are within its tolerance", arguments: cases)
    func fixture(_ c: FixtureCase) throws {
        let output = temporaryPath("\(c.name).out.safetensors")
        defer { try? FileManager.default.removeItem(atPath: output) }
        let run = try runSSM(["eval", c.op, "--input", "\(referenceDirectory)/\(c.name).in.safetensors",
                              "--output", output] + c.options)
        try #require(run.status == 0, "\(c): \(run.stderr)")
        let got = try SafeTensorsFile(path: output)
        let expected = try SafeTensorsFile(path: "\(referenceDirectory)/\(c.name).out.safetensors")
        if c.check == "hippo" {
            for (what, err) in try hippoErrors(got, expected) {
                #expect(err <= c.tolerance, "\(c): \(what) error \(err)")
            }
            return
        }
        for entry in expected.entries {
            let g = try #require(got.entry(entry.name), "\(c): \(entry.name) missing")
            #expect(g.dtype == entry.dtype && g.shape == entry.shape, "\(c): \(entry.name) dtype/shape")
            let err = fixtureError(try got.tensor(entry.name, as: Double.self).scalars,
                                   try expected.tensor(entry.name, as: Double.self).scalars,
                                   scale: c.scales[entry.name] ?? 0)
            #expect(err <= c.tolerance(for: entry.name), "\(c): \(entry.name) error \(err)")
        }
    }
}

/// The invariants of ../shared/reference/README.md for a HiPPO NPLR output (its eigenvector
/// phases and order are not unique): A and B elementwise; the sorted eigenvalues; [V, conj V]
/// unitary; the Gram matrix of the real rank correction P_orig = 2·Re(V P̃ᵀ); A rebuilt as
/// 2·Re(V Λ V*) − P_origᵀ P_orig; and B̃ = clip(V* B) in our own V.
func hippoErrors(_ got: SafeTensorsFile, _ expected: SafeTensorsFile) throws -> [(String, Double)] {
    func values(_ f: SafeTensorsFile, _ name: String) throws -> [Double] { try f.tensor(name, as: Double.self).scalars }
    func complex(_ f: SafeTensorsFile, _ name: String) throws -> [Complex<Double>] {
        let v = try values(f, name)
        return stride(from: 0, to: v.count, by: 2).map { Complex(v[$0], v[$0 + 1]) }
    }
    let a = try values(expected, "A"), b = try values(expected, "B")
    let n = Int(Double(a.count).squareRoot()), half = n / 2
    var errors = [("A", fixtureError(try values(got, "A"), a, scale: 0)), ("B", fixtureError(try values(got, "B"), b, scale: 0))]
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
        let rank = p.count / half
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

@Suite("ssm eval refuses bad input for every operation")
struct EvalBadInputTests {
    /// One fixture input per implemented operation that takes tensors.
    static let cases = implementedOperations.filter { $0 != "hippo" }.compactMap { FixtureCase.all(op: $0).first }

    /// The fixture's input tensors, in the file's dtype.
    func tensors(_ c: FixtureCase) throws -> [(name: String, value: SafeTensorsValue)] {
        let file = try SafeTensorsFile(path: "\(referenceDirectory)/\(c.name).in.safetensors")
        return try file.entries.map { e in
            e.dtype == .f64 ? (e.name, .float64(try file.tensor(e.name, as: Double.self)))
                            : (e.name, .float32(try file.tensor(e.name, as: Float.self)))
        }
    }

    func expectRefused(_ c: FixtureCase, _ tensors: [(name: String, value: SafeTensorsValue)], naming culprit: String,
                       _ what: String) throws {
        let input = temporaryPath("bad.safetensors"), output = temporaryPath("out.safetensors")
        try SafeTensorsFile.write(tensors, to: input)
        defer { try? FileManager.default.removeItem(atPath: input) }
        let run = try runSSM(["eval", c.op, "--input", input, "--output", output] + c.options)
        #expect(run.status != 0, "\(c) \(what): accepted")
        #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.contains(culprit), "\(c) \(what): \(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output), "\(c) \(what): output written")
    }

    /// A tensor each operation requires.
    static let required = ["fftconv": "u", "s4d-kernel": "log_dt", "s4-kernel": "inv_dt", "s4d-recurrent": "u", "s4-recurrent": "u",
                           "selective-scan": "u", "mamba": "hidden_states", "s4d-layer": "u"]

    @Test("a missing tensor, a NaN, an unexpected tensor and a wrong shape are each refused", arguments: cases)
    func refused(_ c: FixtureCase) throws {
        let file = try tensors(c)
        let first = try #require(Self.required[c.op], "\(c.op): no required tensor listed")
        // The required tensor first, then the others.
        let all = file.filter { $0.name == first } + file.filter { $0.name != first }
        try #require(all[0].name == first, "\(c): no tensor \(first)")
        try expectRefused(c, Array(all.dropFirst()), naming: first, "without \(first)")
        var poisoned = all
        switch poisoned[0].value {
        case var .float32(t): t.scalars[t.scalars.count / 2] = .nan; poisoned[0].value = .float32(t)
        case var .float64(t): t.scalars[t.scalars.count / 2] = .infinity; poisoned[0].value = .float64(t)
        }
        try expectRefused(c, poisoned, naming: first, "with a non-finite \(first)")
        let extra: SafeTensorsValue = all[0].value.dtype == .f64
            ? .float64(Tensor(shape: [1], scalars: [0])) : .float32(Tensor(shape: [1], scalars: [0]))
        try expectRefused(c, all + [("surplus", extra)], naming: "surplus", "with an extra tensor")
        var reshaped = all
        switch reshaped[0].value {
        // A trailing unit axis: the same values, one rank too many.
        case let .float32(t): reshaped[0].value = .float32(Tensor(shape: t.shape + [1], scalars: t.scalars))
        case let .float64(t): reshaped[0].value = .float64(Tensor(shape: t.shape + [1], scalars: t.scalars))
        }
        try expectRefused(c, reshaped, naming: first, "with \(first) reshaped")
    }
}
