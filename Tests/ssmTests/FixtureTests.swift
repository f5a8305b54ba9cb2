import Foundation
import Testing
@testable import SSMKit

/// The operations `ssm eval` implements so far; their fixtures must all pass.
let implementedOperations = ["fftconv", "s4d-kernel"]

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
