import Foundation
import Testing
@testable import SSMKit

@Suite("ssm conv")
struct ConvTests {
    func npy(_ values: [Double], shape: [Int]) throws -> String {
        let path = temporaryPath("a.npy")
        let f = try NPYFile(writing: path, dtype: .float64, shape: shape)
        let L = shape.last!
        try values.withUnsafeBufferPointer { p in
            for h in 0 ..< values.count / L { try f.write(channel: h, start: 0, count: L, from: p.baseAddress! + h * L) }
        }
        try f.finish()
        return path
    }

    @Test("streamed and in-memory outputs agree to 1e-12 and the JSON line reports both")
    func agree() throws {
        var rng = SplitMix64(seed: 3)
        let u = try npy((0 ..< 2 * 3001).map { _ in Double.random(in: -1 ..< 1, using: &rng) }, shape: [2, 3001])
        let k = try npy((0 ..< 500).map { _ in Double.random(in: -1 ..< 1, using: &rng) }, shape: [500])
        let (ys, ym) = (temporaryPath("ys.npy"), temporaryPath("ym.npy"))
        let s = try runSSM(["conv", "--input", u, "--kernel", k, "--output", ys, "--skip", "0.3", "--block", "128"])
        let m = try runSSM(["conv", "--input", u, "--kernel", k, "--output", ym, "--skip", "0.3", "--in-memory"])
        #expect(s.status == 0 && m.status == 0, "\(s.stderr) \(m.stderr)")
        #expect(s.stdout.contains("\"op\":\"conv-stream\"") && s.stdout.contains("\"partitions\":4"))
        let (a, b) = (try NPYFile(reading: ys), try NPYFile(reading: ym))
        var worst = 0.0, scale = 0.0
        for h in 0 ..< 2 {
            var x = [Double](repeating: 0, count: 3001), y = x
            try x.withUnsafeMutableBufferPointer { try a.read(channel: h, start: 0, count: 3001, into: $0.baseAddress!) }
            try y.withUnsafeMutableBufferPointer { try b.read(channel: h, start: 0, count: 3001, into: $0.baseAddress!) }
            worst = max(worst, zip(x, y).reduce(0) { max($0, abs($1.0 - $1.1)) })
            scale = max(scale, y.reduce(0) { max($0, abs($1)) })
        }
        #expect(worst / scale <= 1e-12, "relative difference \(worst / scale)")
    }

    @Test("bad input: a missing file, a kernel longer than the input, NaN input: non-zero exit, nothing at --output")
    func badInput() throws {
        let u = try npy([1, 2, .nan, 4], shape: [4])
        let k = try npy([1, 2, 3, 4, 5], shape: [5])
        let k2 = try npy([1, 2], shape: [2])
        for (arguments, word) in [(["--input", "/nonexistent.npy", "--kernel", k2], "nonexistent"),
                                  (["--input", u, "--kernel", k], "--kernel"),
                                  (["--input", u, "--kernel", k2], "--input")] {
            let out = temporaryPath("y.npy")
            let r = try runSSM(["conv"] + arguments + ["--output", out])
            #expect(r.status != 0 && r.stderr.contains(word), "\(arguments): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "an output was left at \(out)")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())
                .filter { $0.hasPrefix((out as NSString).lastPathComponent + ".tmp") }
            #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
        }
    }
}
