import Foundation
import Testing
@testable import SSMKit

@Suite("ssm train")
struct TrainTests {
    @Test("12 steps in one process = 6 steps, checkpoint, then --resume in a new process for 6: identical files; the JSON line")
    func resumeAcrossProcesses() throws {
        let (straight, split) = (temporaryPath("straight"), temporaryPath("split"))
        defer { for d in [straight, split] { try? FileManager.default.removeItem(atPath: d) } }
        let common = ["train", "--task", "copying", "--length", "24", "--tokens", "3", "--width", "8", "--state", "4", "--steps", "12",
                      "--batch", "4", "--validation-size", "8"]
        let a = try runSSM(common + ["--checkpoint", straight, "--json"])
        #expect(a.status == 0, "\(a.stderr)")
        let last = try #require(a.stdout.split(separator: "\n").last)
        for key in ["\"task\":\"copying\"", "\"model\":\"s4d\"", "\"steps\":12", "\"seconds\":", "\"loss\":", "\"accuracy\":",
                    "\"recurrent_accuracy\":"] {
            #expect(last.contains(key), "\(key) missing from \(last)")
        }
        let b = try runSSM(common + ["--checkpoint", split, "--stop-after", "6"])
        let c = try runSSM(["train", "--resume", split, "--checkpoint", split])
        #expect(b.status == 0 && c.status == 0, "\(b.stderr) \(c.stderr)")
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let x = FileManager.default.contents(atPath: "\(straight)/\(file)"), y = FileManager.default.contents(atPath: "\(split)/\(file)")
            #expect(x != nil && x == y, "\(file) differs after resuming in a new process")
        }
    }

    @Test("a resumed run keeps the thread count, planner effort and precision it was trained with; asking for others is refused by flag")
    func resumeKeepsTheMachineSettings() throws {
        let (straight, split) = (temporaryPath("threads-straight"), temporaryPath("threads-split"))
        defer { for d in [straight, split] { try? FileManager.default.removeItem(atPath: d) } }
        // One thread, and a Mamba model whose scan and LayerNorm split their sums by worker:
        // resumed on the default (all processors) it would not repeat the run.
        let common = ["train", "--task", "copying", "--model", "mamba", "--layers", "1", "--width", "8", "--state", "4", "--steps", "4",
                      "--batch", "2", "--validation-size", "8", "--threads", "1", "--precision", "float64"]
        #expect(try runSSM(common + ["--checkpoint", straight]).status == 0)
        #expect(try runSSM(common + ["--checkpoint", split, "--stop-after", "2"]).status == 0)
        for (flag, value) in [("--threads", "2"), ("--precision", "float32"), ("--effort", "measure")] {
            let r = try runSSM(["train", "--resume", split, "--checkpoint", split, flag, value])
            #expect(r.status != 0 && r.stderr.contains("\(flag): the run was trained with"), "\(flag): \(r.stderr)")
        }
        let c = try runSSM(["train", "--resume", split, "--checkpoint", split])
        #expect(c.status == 0, "\(c.stderr)")
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let x = FileManager.default.contents(atPath: "\(straight)/\(file)"), y = FileManager.default.contents(atPath: "\(split)/\(file)")
            #expect(x != nil && x == y, "\(file) differs after resuming with the checkpoint's own settings")
        }
    }

    /// Tests/Fixtures/checkpoints: float64 runs of 9 steps (copying, 2 layers, width 8, N = 4,
    /// dropout 0.1) written by the model layer before its mixer redesign (commit ef07064),
    /// stopped after 6 steps, and each uninterrupted run's JSON line.
    @Test("a checkpoint written before the mixer redesign resumes to the old uninterrupted run's exact validation loss",
          arguments: ["s4d", "s4", "mamba"])
    func resumesOldCheckpoint(_ model: String) throws {
        let source = fixtureDirectory + "/checkpoints/" + model
        let copy = temporaryPath("old-" + model)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for file in ["model.safetensors", "optimizer.safetensors"] {
            try FileManager.default.copyItem(atPath: "\(source)/\(file)", toPath: "\(copy)/\(file)")
        }
        let r = try runSSM(["train", "--resume", copy, "--precision", "float64", "--threads", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        func field(_ line: Substring, _ key: String) -> String? {
            guard let range = line.range(of: "\"\(key)\":") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "," && $0 != "}" })
        }
        let line = try #require(r.stdout.split(separator: "\n").last)
        let expected = try #require(String(contentsOfFile: source + "/uninterrupted.json", encoding: .utf8).split(separator: "\n").last)
        #expect(field(line, "steps") == "9")
        for key in ["loss", "accuracy", "recurrent_accuracy"] {  // train_loss averages only this invocation's steps
            #expect(field(line, key) != nil && field(line, key) == field(expected, key), "\(model) \(key): \(line) vs \(expected)")
        }
    }

    @Test("impossible options: non-zero exit with a one-line message naming the flag")
    func badOptions() throws {
        for (arguments, word) in [(["--steps", "0"], "--steps"), (["--lr", "-1"], "--lr"), (["--task", "selective-copying", "--length", "5"], "--length"),
                                  (["--task", "digits", "--data", "/nonexistent.safetensors"], "--data"),
                                  (["--resume", "/nonexistent-dir"], "nonexistent"),
                                  (["--resume", "/nonexistent-dir", "--steps", "20", "--lr", "0.1"], "--steps, --lr"),
                                  (["--stop-after", "3"], "--checkpoint"), (["--model", "s4d", "--state", "5"], "state"),
                                  (["--checkpoint-every", "2"], "--checkpoint"), (["--task", "copying", "--data", "/tmp/x.safetensors"], "--data"),
                                  (["--task", "adding", "--tokens", "3"], "--tokens"), (["--checkpoint", "/proc/version"], "--checkpoint"),
                                  (["--width", "4611686018427387904"], "--width"), (["--length", "100000000000"], "--length"),
                                  (["--validation-size", "4611686018427387904"], "--validation-size")] {
            let r = try runSSM(["train"] + arguments)
            #expect(r.status != 0 && r.stderr.contains(word), "\(arguments): \(r.stderr)")
        }
    }
}

@Suite("ssm bench train")
struct BenchTrainTests {
    @Test("each row carries the step's GEMM + FFT + scan bound, recorded from the step itself", arguments: ["s4d", "s4", "mamba"])
    func bound(_ model: String) throws {
        let run = try runSSM(["bench", "train", "--model", model, "--layers", "2", "--channels", "8", "--state", "4",
                              "--length", "32", "--batch", "2", "--repeats", "1", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let line = try #require(run.stdout.split(separator: "\n").last)
        let row = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let gemms = try #require(row["bound_gemms"] as? Int), phases = try #require(row["bound_transform_phases"] as? Int)
        // Every model runs GEMMs (encoder, decoder, projections); the S4 models convolve by FFT,
        // forward and backward, in every layer; Mamba's scan is no FFT.
        #expect(gemms > 0)
        #expect(model == "mamba" ? phases == 0 : phases >= 2 * 2, "\(phases) transform phases")
        // Mamba's scan runs forward and backward in each of the 2 layers.
        let scans = try #require(row["bound_scans"] as? Int)
        #expect(model == "mamba" ? scans == 2 * 2 : scans == 0, "\(scans) scans")
        let bound = try #require(row["bound_seconds"] as? Double), step = try #require(row["seconds"] as? Double)
        #expect(bound > 0 && bound.isFinite && step > 0)
    }

    @Test("--mixers builds a stack of mixed blocks, one per entry, under either backbone; wrong or conflicting options are refused by name")
    func hybrid() throws {
        let run = try runSSM(["bench", "train", "--mixers", "s4d,mamba,s4", "--channels", "8", "--state", "4", "--length", "32", "--batch", "2",
                              "--repeats", "1", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let line = try #require(run.stdout.split(separator: "\n").last)
        let row = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(row["model"] as? String == "s4d,mamba,s4" && row["layers"] as? Int == 3, "\(line)")
        // Two convolution blocks (forward and backward each), one scan forward and backward.
        #expect((row["bound_transform_phases"] as? Int ?? 0) >= 2 * 2 && row["bound_scans"] as? Int == 2, "\(line)")
        #expect(row["backbone"] as? String == "mamba", "\(line)")
        let s4 = try runSSM(["bench", "train", "--mixers", "mamba,s4d", "--backbone", "s4", "--channels", "8", "--state", "4", "--length", "16",
                             "--batch", "2", "--repeats", "1", "--json"])
        #expect(s4.status == 0 && s4.stdout.contains("\"backbone\":\"s4\""), "\(s4.stdout) \(s4.stderr)")
        for (arguments, word) in [(["--mixers", "s4d,lstm"], "--mixers"), (["--mixers", "s4d,"], "--mixers"),
                                  (["--mixers", "mamba,s4", "--state", "5"], "--state"), (["--mixers", "s4d", "--layers", "3"], "--layers"),
                                  (["--mixers", "s4d", "--model", "s4"], "--model"), (["--backbone", "s4"], "--backbone")] {
            let r = try runSSM(["bench", "train", "--repeats", "1"] + arguments)
            #expect(r.status != 0 && r.stderr.contains(word), "\(arguments): \(r.stderr)")
        }
    }
}
