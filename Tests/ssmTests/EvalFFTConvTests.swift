import Foundation
import Testing
@testable import SSMKit

@Suite("ssm eval fftconv")
struct EvalFFTConvTests {
    /// Writes an input file holding `tensors` and returns its path.
    func inputFile(_ tensors: [(String, SafeTensorsValue)]) throws -> String {
        let path = temporaryPath("in.safetensors")
        try SafeTensorsFile.write(tensors.map { (name: $0.0, value: $0.1) }, to: path)
        return path
    }

    static func t(_ shape: [Int], _ fill: Double = 0.5) -> SafeTensorsValue {
        .float64(Tensor(shape: shape, scalars: Array(repeating: fill, count: shape.reduce(1, *))))
    }

    /// Bad inputs, the word the one-line message must contain, and extra arguments.
    static let badInputs: [(String, [(String, SafeTensorsValue)], String, [String])] = [
        ("missing k", [("u", t([1, 2, 8]))], "k", []),
        ("unexpected tensor", [("u", t([1, 2, 8])), ("k", t([2, 8])), ("w", t([1]))], "w", []),
        ("k longer than u", [("u", t([1, 2, 8])), ("k", t([2, 9]))], "k", []),
        ("k channels differ", [("u", t([1, 2, 8])), ("k", t([3, 8]))], "k", []),
        ("u of rank 2", [("u", t([2, 8])), ("k", t([2, 8]))], "u", []),
        ("D of the wrong shape", [("u", t([1, 2, 8])), ("k", t([2, 8])), ("D", t([3]))], "D", []),
        ("d_y of the wrong shape", [("u", t([1, 2, 8])), ("k", t([2, 8])), ("d_y", t([1, 2, 7]))], "d_y", []),
        ("NaN in u", [("u", t([1, 2, 8], .nan)), ("k", t([2, 8]))], "u", []),
        ("infinity in k", [("u", t([1, 2, 8])), ("k", t([2, 8], .infinity))], "k", []),
        ("mixed dtypes", [("u", t([1, 2, 8])), ("k", .float32(Tensor(shape: [2, 8], scalars: Array(repeating: 1, count: 16))))], "k", []),
        ("bidirectional k not (2, H, Lk)", [("u", t([1, 2, 8])), ("k", t([3, 2, 8]))], "k", ["--bidirectional"]),
        ("zero threads", [("u", t([1, 2, 8])), ("k", t([2, 8]))], "threads", ["--threads", "0"]),
        ("unknown option", [("u", t([1, 2, 8])), ("k", t([2, 8]))], "--frobnicate", ["--frobnicate"]),
    ]

    @Test("bad input: non-zero exit, one line naming the culprit, no output written",
          arguments: 0 ..< badInputs.count)
    func badInput(_ index: Int) throws {
        let (name, tensors, culprit, extra) = Self.badInputs[index]
        let input = try inputFile(tensors)
        let output = temporaryPath("out.safetensors")
        defer { try? FileManager.default.removeItem(atPath: input) }
        let run = try runSSM(["eval", "fftconv", "--input", input, "--output", output] + extra)
        #expect(run.status != 0, "\(name)")
        #expect(run.stderr.split(separator: "\n").count == 1, "\(name): \(run.stderr)")
        #expect(run.stderr.contains(culprit), "\(name): \(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output), "\(name): output written")
    }

    @Test("unreadable and malformed files, and an unknown op, fail cleanly")
    func badFiles() throws {
        let output = temporaryPath("out.safetensors")
        let garbage = temporaryPath("garbage.safetensors")
        try Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3]).write(to: URL(fileURLWithPath: garbage))
        defer { try? FileManager.default.removeItem(atPath: garbage) }
        for (args, culprit) in [(["eval", "fftconv", "--input", "/nonexistent.safetensors", "--output", output], "nonexistent"),
                                (["eval", "fftconv", "--input", garbage, "--output", output], "header length"),
                                (["eval", "fftconvolution", "--input", garbage, "--output", output], "fftconvolution")] {
            let run = try runSSM(args)
            #expect(run.status != 0, "\(args)")
            #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.contains(culprit), "\(args): \(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output))
        }
    }

    @Test("an unwritable output fails and leaves nothing behind")
    func unwritableOutput() throws {
        let input = try inputFile([("u", Self.t([1, 2, 8])), ("k", Self.t([2, 8]))])
        defer { try? FileManager.default.removeItem(atPath: input) }
        let run = try runSSM(["eval", "fftconv", "--input", input, "--output", "/nonexistent-dir/out.safetensors"])
        #expect(run.status != 0)
        #expect(run.stderr.contains("/nonexistent-dir/out.safetensors"), "\(run.stderr)")
    }
}
