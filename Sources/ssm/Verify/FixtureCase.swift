import SSMKit
#if canImport(Glibc)
import Glibc
#endif

/// One case of a fixture folder: the `ssm eval` call that the official PyTorch code's tensors
/// were made for, and how close the result must come (the entries of the folder's cases.json).
struct FixtureCase: CustomStringConvertible, Sendable {
    var name: String
    var op: String
    var options: [String]
    /// The tolerance of every tensor that has none of its own.
    var tolerance: Double
    var tensorTolerances: [String: Double]
    /// A floor under max|expected| for tensors that are analytically ~0 (see ``fixtureError``).
    var scales: [String: Double]
    /// "allclose" (elementwise) or "hippo" (invariants of a decomposition that is not unique).
    var check: String
    var description: String { name }

    /// The tolerance for tensor `tensor`: its own, else the case's.
    func tolerance(for tensor: String) -> Double { tensorTolerances[tensor] ?? tolerance }

    func inputPath(in directory: String) -> String { "\(directory)/\(name).in.safetensors" }
    func outputPath(in directory: String) -> String { "\(directory)/\(name).out.safetensors" }
}

/// The cases of a fixture folder, checked to be complete: every case's input and expected
/// output file is present. A folder that cannot be read, or is missing a file, is an error, so
/// that a check never passes by running nothing.
struct FixtureSet: Sendable {
    let directory: String
    let cases: [FixtureCase]

    init(directory: String) throws {
        self.directory = directory
        let index = "\(directory)/cases.json"
        let json: JSONValue
        do { json = try JSONValue.parse(try FileIO.readAll(index)) } catch {
            throw SSMError.value(argument: "--fixtures", expected: "a fixture folder with cases.json (\(index): \(error))")
        }
        guard let list = json["cases"]?.array, !list.isEmpty else {
            throw SSMError.value(argument: "--fixtures", expected: "a non-empty \"cases\" list in \(index)")
        }
        func numbers(_ value: JSONValue?) -> [String: Double] {
            var out: [String: Double] = [:]
            for (key, v) in value?.object ?? [] { out[key] = v.double }
            return out
        }
        cases = try list.map { c in
            guard let name = c["name"]?.string, let op = c["op"]?.string, let tolerance = c["tol"]?.double, tolerance > 0 else {
                throw SSMError.value(argument: "--fixtures", expected: "cases with a name, an op and a tolerance > 0 in \(index)")
            }
            return FixtureCase(name: name, op: op, options: c["options"]?.array?.compactMap(\.string) ?? [],
                               tolerance: tolerance, tensorTolerances: numbers(c["tol_tensors"]),
                               scales: numbers(c["scale_tensors"]), check: c["check"]?.string ?? "allclose")
        }
        for c in cases {
            for path in [c.inputPath(in: directory), c.outputPath(in: directory)] where access(path, R_OK) != 0 {
                throw SSMError.missing(argument: "--fixtures", expected: "\(path), a file of case \(c.name) listed in \(index)")
            }
        }
    }

    /// The cases of `op`.
    func cases(op: String) -> [FixtureCase] { cases.filter { $0.op == op } }
}
