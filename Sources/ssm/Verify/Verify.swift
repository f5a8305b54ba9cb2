import ArgumentParser
import SSMKit
#if canImport(Glibc)
import Glibc
#endif

/// `ssm verify`: every case of a fixture folder through `ssm eval`, compared with the tensors
/// the official PyTorch code computed.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check ssm eval against the PyTorch fixtures: one line per case, non-zero exit on any failure.",
        discussion: """
        Each case of DIR/cases.json runs as `ssm eval OP --input DIR/<case>.in.safetensors` with \
        the case's options, in this process, and every tensor of DIR/<case>.out.safetensors is \
        compared: max|actual − expected| / max(max|expected|, scale) must not exceed the case's \
        tolerance (scale, from cases.json, only for tensors that are analytically ~0). \
        The repository's fixtures are in Tests/Fixtures (see its README for their provenance).
        """
    )

    @Option(name: .long, help: "The fixture folder (cases.json and the case files).")
    var fixtures = "Tests/Fixtures"

    @Option(name: .long, help: "Only the cases of these operations (comma-separated).")
    var op: String?

    func run() throws {
        let set = try FixtureSet(directory: fixtures)
        let ops = op.map { $0.split(separator: ",").map(String.init) }
        let cases = set.cases.filter { ops?.contains($0.op) ?? true }
        if cases.isEmpty { throw SSMError.value(argument: "--op", expected: "an operation with cases in \(fixtures)") }
        var failed = 0
        let width = cases.map(\.name.count).max() ?? 0
        for c in cases {
            var (checks, failure) = Self.check(c, in: set.directory)
            if failure == nil, checks.isEmpty { failure = "nothing compared: \(c.outputPath(in: set.directory)) holds no tensors" }
            let worst = checks.max { $0.error / $0.tolerance < $1.error / $1.tolerance }
            let ok = failure == nil && checks.allSatisfy(\.passed)
            if !ok { failed += 1 }
            let padded = c.name.padding(to: width)
            if let failure {
                print("FAIL \(padded)  \(failure)")
            } else if let worst {
                let detail = ok ? "worst \(worst.what): \(formatScientific(worst.error)) ≤ \(formatScientific(worst.tolerance))"
                                : checks.filter { !$0.passed }.map { "\($0.what): \(formatScientific($0.error)) > \(formatScientific($0.tolerance))" }.joined(separator: "; ")
                print("\(ok ? "ok  " : "FAIL") \(padded)  \(detail)")
            }
        }
        print("fixtures: \(cases.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode.failure }
    }

    /// Runs case `c` through `ssm eval` and compares; a failure to run is returned as text.
    static func check(_ c: FixtureCase, in directory: String) -> ([FixtureCheck], String?) {
        let output = "\(temporaryDirectory())/ssm-verify-\(getpid())-\(c.name).out.safetensors"
        defer { unlink(output) }
        do {
            var command = try SSM.parseAsRoot(["eval", c.op, "--input", c.inputPath(in: directory), "--output", output] + c.options)
            try command.run()
        } catch {
            return ([], "ssm eval \(c.op): \(oneLineMessage(for: error))")
        }
        do {
            return (try compareFixture(c, produced: try SafeTensorsFile(path: output),
                                       expected: try SafeTensorsFile(path: c.outputPath(in: directory))), nil)
        } catch {
            return ([], oneLineMessage(for: error))
        }
    }
}

/// $TMPDIR, else /tmp.
func temporaryDirectory() -> String {
    getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
}

/// `x` in scientific notation with three significant digits (`2.47e-07`).
func formatScientific(_ x: Double) -> String {
    guard x.isFinite, x != 0 else { return "\(x)" }
    var e = 0, m = Swift.abs(x)
    while m >= 10 { m /= 10; e += 1 }
    while m < 1 { m *= 10; e -= 1 }
    if (m * 100).rounded() >= 1000 { m /= 10; e += 1 }
    let exponent = (e < 0 ? "-" : "+") + (Swift.abs(e) < 10 ? "0" : "") + "\(Swift.abs(e))"
    return (x < 0 ? "-" : "") + formatFixed(m, 2) + "e" + exponent
}
