import Foundation
@testable import SSMKit

/// The `ssm` executable built beside this test bundle.
let ssmExecutable: String = {
    let here = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0])
    var dir = here.deletingLastPathComponent()
    // The test binary sits in <config>/SSMKitPackageTests.xctest[/…]; ssm sits in <config>/.
    for _ in 0 ..< 4 {
        let candidate = dir.appendingPathComponent("ssm").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return "ssm"
}()

/// The fixture folder: $SSMKIT_REFERENCE_DIR, else ../shared/reference beside the package.
let referenceDirectory: String = {
    if let dir = ProcessInfo.processInfo.environment["SSMKIT_REFERENCE_DIR"] { return dir }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return root.deletingLastPathComponent().appendingPathComponent("shared/reference").path
}()

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `ssm` with `arguments` and collects its exit status and output.
func runSSM(_ arguments: [String]) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: ssmExecutable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    let stderrData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return RunResult(status: process.terminationStatus,
                     stdout: String(decoding: stdoutData, as: UTF8.self),
                     stderr: String(decoding: stderrData, as: UTF8.self))
}

/// A fresh path in the temporary directory (not created).
func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "ssmkit-\(UInt32.random(in: 0 ... .max))-" + name
}

/// One fixture case of ../shared/reference/cases.json.
struct FixtureCase: CustomStringConvertible, Sendable {
    var name: String
    var op: String
    var options: [String]
    var tolerance: Double
    var tensorTolerances: [String: Double]
    var scales: [String: Double]
    /// "allclose" (elementwise) or "hippo" (invariants of a non-unique decomposition).
    var check: String
    var description: String { name }

    /// The tolerance for tensor `name`: its own, else the case's.
    func tolerance(for tensor: String) -> Double { tensorTolerances[tensor] ?? tolerance }

    /// Every case of `op` listed in cases.json (empty when the folder is absent).
    static func all(op: String) -> [FixtureCase] {
        guard let data = FileManager.default.contents(atPath: referenceDirectory + "/cases.json"),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = root["cases"] as? [[String: Any]]
        else { return [] }
        return cases.compactMap { c in
            guard c["op"] as? String == op, let name = c["name"] as? String else { return nil }
            return FixtureCase(name: name, op: op, options: c["options"] as? [String] ?? [],
                               tolerance: (c["tol"] as? NSNumber)?.doubleValue ?? 0,
                               tensorTolerances: (c["tol_tensors"] as? [String: NSNumber] ?? [:]).mapValues(\.doubleValue),
                               scales: (c["scale_tensors"] as? [String: NSNumber] ?? [:]).mapValues(\.doubleValue),
                               check: c["check"] as? String ?? "allclose")
        }
    }
}

/// max|a − e| / max(max|e|, scale), in Double: the measure of the fixtures' README.
func fixtureError(_ actual: [Double], _ expected: [Double], scale: Double) -> Double {
    guard actual.count == expected.count else { return .infinity }
    var diff = 0.0, magnitude = 0.0
    for (a, e) in zip(actual, expected) {
        if !a.isFinite { return .infinity }
        diff = max(diff, abs(a - e))
        magnitude = max(magnitude, abs(e))
    }
    let s = max(magnitude, scale)
    return s > 0 ? diff / s : diff
}
