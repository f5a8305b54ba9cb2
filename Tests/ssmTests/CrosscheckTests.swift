import Foundation
import Testing
@testable import SSMKit

@Suite("ssm crosscheck")
struct CrosscheckTests {
    @Test("S4D and S4 (dense, linear) agree to rounding in float64; --json holds the figures",
          arguments: [["--model", "s4d"], ["--model", "s4d", "--initialization", "legs"],
                      ["--model", "s4", "--step-mode", "dense"], ["--model", "s4", "--step-mode", "linear"]])
    func agree(_ model: [String]) throws {
        let run = try runSSM(["crosscheck"] + model + ["--length", "777", "--batch", "2", "--channels", "3", "--state", "16", "--json"])
        #expect(run.status == 0, "\(model): \(run.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let error = try #require(object?["max_rel_error"] as? Double)
        #expect(error <= 1e-10, "\(model): \(error)")
        #expect(object?["passed"] as? Bool == true)
    }

    @Test("Mamba and Mamba-2 blocks: scan mode equals step mode in float64 (odd L, several chunks, G = 2), errors by eighth and both throughputs",
          arguments: [["--model", "mamba"], ["--model", "mamba2", "--groups", "2", "--chunk-size", "16"]])
    func selective(_ model: [String]) throws {
        let run = try runSSM(["crosscheck"] + model + ["--length", "101", "--batch", "2", "--channels", "16", "--state", "8", "--json"])
        #expect(run.status == 0, "\(model): \(run.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let error = try #require(object?["max_rel_error"] as? Double)
        #expect(error <= 1e-12, "\(model): \(error)")
        #expect((object?["rel_error_by_eighth"] as? [Double])?.count == 8)
        #expect((object?["scan_tokens_per_second"] as? Double ?? 0) > 0 && (object?["step_tokens_per_second"] as? Double ?? 0) > 0)
        // Groups that do not divide the heads (Mamba-2), or a Mamba-2 option for Mamba: refused.
        let bad = try runSSM(["crosscheck"] + model + ["--channels", "16", "--groups", "3", "--length", "8"])
        #expect(bad.status != 0 && bad.stderr.contains("--groups"), "\(bad.stderr)")
    }

    @Test("an error above the tolerance exits 1 after printing it; a bad option exits 64")
    func failure() throws {
        let run = try runSSM(["crosscheck", "--model", "s4d", "--length", "100", "--tolerance", "1e-300"])
        #expect(run.status == 1)
        #expect(run.stdout.contains("FAILED"))
        let bad = try runSSM(["crosscheck", "--model", "s5"])
        #expect(bad.status != 0 && bad.stderr.contains("--model"))
    }

    @Test("--checkpoint reads the parameters from a safetensors file and refuses surplus tensors")
    func checkpoint() throws {
        let p = try S4DParameters<Double>(channels: 2, state: 8, initialization: .legs, seed: 5)
        func complex(_ z: [Complex<Double>]) -> SafeTensorsValue {
            .float64(Tensor(shape: [2, 4, 2], scalars: z.flatMap { [$0.real, $0.imaginary] }))
        }
        var tensors: [(name: String, value: SafeTensorsValue)] = [
            ("log_dt", .float64(Tensor(shape: [2], scalars: p.logDt))), ("C", complex(p.c)),
            ("log_A_real", .float64(Tensor(shape: [2, 4], scalars: p.logAReal))),
            ("A_imag", .float64(Tensor(shape: [2, 4], scalars: p.aImag))), ("B", complex(p.b!)),
            ("D", .float64(Tensor(shape: [2], scalars: [0.5, -1]))),
        ]
        let path = temporaryPath("checkpoint.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafeTensorsFile.write(tensors, to: path)
        let run = try runSSM(["crosscheck", "--model", "s4d", "--checkpoint", path, "--length", "500", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        #expect(object?["channels"] as? Int == 2 && object?["state"] as? Int == 8 && object?["init"] as? String == "checkpoint")
        #expect((object?["max_rel_error"] as? Double ?? 1) <= 1e-10)
        tensors.append(("extra", .float64(Tensor(shape: [1], scalars: [0]))))
        try SafeTensorsFile.write(tensors, to: path)
        let refused = try runSSM(["crosscheck", "--model", "s4d", "--checkpoint", path])
        #expect(refused.status != 0 && refused.stderr.contains("extra"))
    }
}
