import Foundation
import Testing
@testable import SSMKit
@testable import ssm

/// The operations `ssm eval` implements; their fixtures must all pass.
let implementedOperations = [
    "fftconv", "s4d-kernel", "hippo", "s4d-recurrent", "s4-kernel", "s4-recurrent", "selective-scan", "mamba", "s4d-layer", "ssd",
    "mamba2",
]

@Suite("fixtures from the official PyTorch code, through ssm eval")
struct FixtureTests {
    static let cases = implementedOperations.flatMap { fixtureCases(op: $0) }

    @Test("Tests/Fixtures is complete and lists cases for every implemented operation")
    func fixturesPresent() throws {
        let set = try fixtureSet.get()
        for op in implementedOperations {
            #expect(!set.cases(op: op).isEmpty, "no \(op) cases in \(fixtureDirectory)")
        }
        let inputs = try FileManager.default.contentsOfDirectory(atPath: fixtureDirectory).filter { $0.hasSuffix(".in.safetensors") }
        #expect(inputs.count == set.cases.count, "\(inputs.count) input files, \(set.cases.count) cases in cases.json")
        // The 21 public cases of the official code's fixture set and the 7 Mamba-2 cases of
        // scripts/mamba2: none may go missing unnoticed.
        #expect(set.cases.count == 28, "\(set.cases.count) fixture cases, expected 21 + 7")
        #expect(Set(set.cases.map(\.op)).isSubset(of: implementedOperations), "cases of an operation ssm does not implement")
        print("fixtures: \(Self.cases.count) PyTorch fixture cases from \(fixtureDirectory)")
    }

    @Test("each fixture's outputs and gradients are within its tolerance", arguments: cases)
    func fixture(_ c: FixtureCase) throws {
        let output = temporaryPath("\(c.name).out.safetensors")
        defer { try? FileManager.default.removeItem(atPath: output) }
        let run = try runSSM(["eval", c.op, "--input", c.inputPath(in: fixtureDirectory), "--output", output] + c.options)
        try #require(run.status == 0, "\(c): \(run.stderr)")
        let checks = try compareFixture(c, produced: try SafeTensorsFile(path: output),
                                        expected: try SafeTensorsFile(path: c.outputPath(in: fixtureDirectory)))
        #expect(!checks.isEmpty, "\(c): nothing compared")
        for check in checks {
            #expect(check.passed, "\(c): \(check.what) error \(check.error) > \(check.tolerance)")
        }
    }

    @Test("ssm verify passes every case, and fails when an expected tensor is changed")
    func verify() throws {
        let set = try fixtureSet.get()
        let run = try runSSM(["verify", "--fixtures", fixtureDirectory])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("fixtures: \(set.cases.count) passed, 0 failed"), "\(run.stdout)")

        // A copy of one case whose expected y is off by 1e-3 of its scale: far over its tolerance.
        let c = try #require(set.cases(op: "fftconv").first)
        let dir = temporaryPath("fixtures")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: c.inputPath(in: fixtureDirectory), toPath: c.inputPath(in: dir))
        let expected = try SafeTensorsFile(path: c.outputPath(in: fixtureDirectory))
        var tensors: [(name: String, value: SafeTensorsValue)] = []
        for e in expected.entries {
            var t = try expected.tensor(e.name, as: Float.self)
            if e.name == "y" { t.scalars[0] += 1e-3 * t.scalars.map(abs).max()! }
            tensors.append((e.name, .float32(t)))
        }
        try SafeTensorsFile.write(tensors, to: c.outputPath(in: dir))
        let index = #"{"cases": [{"name": "\#(c.name)", "op": "\#(c.op)", "options": [], "tol": \#(c.tolerance)}]}"#
        try Data(index.utf8).write(to: URL(fileURLWithPath: dir + "/cases.json"))
        let bad = try runSSM(["verify", "--fixtures", dir])
        #expect(bad.status != 0 && bad.stdout.contains("FAIL") && bad.stdout.contains("0 passed, 1 failed"), "\(bad.stdout)")

        // An expected file with no tensors compares nothing, which is a failure, not a pass.
        try SafeTensorsFile.write([], to: c.outputPath(in: dir))
        let empty = try runSSM(["verify", "--fixtures", dir])
        #expect(empty.status != 0 && empty.stdout.contains("nothing compared"), "\(empty.stdout)")

        // A folder without cases.json is refused with one line naming the option.
        let missing = try runSSM(["verify", "--fixtures", dir + "/absent"])
        #expect(missing.status != 0 && missing.stderr.contains("--fixtures"), "\(missing.stderr)")
    }
}

@Suite("ssm eval refuses bad input for every operation")
struct EvalBadInputTests {
    /// One fixture input per implemented operation that takes tensors.
    static let cases = implementedOperations.filter { $0 != "hippo" }.compactMap { fixtureCases(op: $0).first }

    /// The fixture's input tensors, in the file's dtype.
    func tensors(_ c: FixtureCase) throws -> [(name: String, value: SafeTensorsValue)] {
        let file = try SafeTensorsFile(path: c.inputPath(in: fixtureDirectory))
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
                           "selective-scan": "u", "mamba": "hidden_states", "s4d-layer": "u", "ssd": "x",
                           "mamba2": "hidden_states"]

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
        case .int64: Issue.record("\(c): the fixture's \(first) is an integer tensor")
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
        case let .int64(shape, values): reshaped[0].value = .int64(shape: shape + [1], values: values)
        }
        try expectRefused(c, reshaped, naming: first, "with \(first) reshaped")
    }
}

@Suite("ssm eval: impossible options")
struct EvalOptionTests {
    @Test("mamba2: a NaN or reversed Δ limit is refused by flag, before the model is built")
    func timeStepLimits() throws {
        let c = try #require(fixtureCases(op: "mamba2").first)
        let output = temporaryPath("mamba2-limits.safetensors")
        defer { try? FileManager.default.removeItem(atPath: output) }
        for (options, flag) in [(["--dt-min", "nan"], "--dt-min"), (["--dt-max", "nan"], "--dt-max"), (["--dt-min", "0.5", "--dt-max", "0.1"], "--dt-max"),
                                (["--dt-min", "-1"], "--dt-min")] {
            let run = try runSSM(["eval", "mamba2", "--input", c.inputPath(in: fixtureDirectory), "--output", output] + c.options + options)
            #expect(run.status != 0 && run.stderr.contains(flag), "\(options): \(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output), "\(options) wrote an output")
        }
    }
}
