import Foundation
import Testing
@testable import SSMKit

/// `ssm generate`, `ssm tokenize`, `ssm eval lm` and `ssm perplexity` on the tiny fixture model.
@Suite("ssm language commands")
struct LanguageCLITests {
    static let model = fixtureDirectory + "/pretrained/tiny-mamba"
    /// The tiny models of both families, by fixture name (tiny-mamba, tiny-mamba2).
    static let models = ["tiny-mamba", "tiny-mamba2"]

    func lastJSON(_ r: RunResult) throws -> JSONValue {
        let line = try #require(r.stdout.split(separator: "\n").last)
        return try JSONValue.parse(Array(line.utf8))
    }

    @Test("generate --json: greedy ids as transformers, the contract's fields; a batch; sampling repeats with its seed",
          arguments: LanguageCLITests.models)
    func generate(name: String) throws {
        let model = fixtureDirectory + "/pretrained/" + name
        let expected = try JSONValue.parse(FileIO.readAll(fixtureDirectory + "/pretrained/\(name.replacingOccurrences(of: "-", with: "_"))_expected.json"))
        let prompt = try #require(expected["prompt"]?.string)
        let greedy = try #require(expected["greedy_ids"]?.array).map { $0.integer! }
        let r = try runSSM(["generate", "--model", model, "--prompt", prompt, "--max-new-tokens", "\(greedy.count)", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try lastJSON(r)
        #expect(j["ids"]?.array?.map { $0.integer! } == greedy)
        #expect(j["text"]?.string == expected["greedy_text"]?.string)
        #expect(j["prompt_tokens"]?.integer == 9 && j["new_tokens"]?.integer == greedy.count)
        for key in ["prefill_tokens_per_second", "decode_tokens_per_second"] { #expect((j[key]?.double ?? 0) > 0, "\(key)") }
        // Streamed text (no --json) is the same text.
        let streamed = try runSSM(["generate", "--model", model, "--prompt", prompt, "--max-new-tokens", "\(greedy.count)"])
        #expect(streamed.status == 0 && streamed.stdout == (expected["greedy_text"]?.string ?? "") + "\n")
        let sample = ["generate", "--model", model, "--prompt-ids", "5,6,7", "--temperature", "0.9", "--top-p", "0.9", "--seed", "4",
                      "--max-new-tokens", "12", "--json"]
        let (s1, s2) = (try runSSM(sample), try runSSM(sample))
        let (j1, j2) = (try lastJSON(s1), try lastJSON(s2))
        #expect(s1.status == 0 && j1["ids"] == j2["ids"])
        // A batch of prompts of two lengths; the folder's tokenizer gives the JSON its texts; the
        // state of sequences of two lengths is saved, and continued.
        let path = temporaryPath("batch-state.safetensors")
        defer { unlink(path) }
        let batch = try runSSM(["generate", "--model", model, "--prompt-ids", "5,6,7", "--prompt-ids", "8,9", "--max-new-tokens", "4",
                                "--save-state", path, "--json"])
        let jb = try lastJSON(batch)
        #expect(batch.status == 0 && jb["ids"]?.array?.count == 2 && jb["text"]?.array?.count == 2, "\(batch.stderr)")
        let more = try runSSM(["generate", "--model", model, "--load-state", path, "--max-new-tokens", "2", "--json"])
        #expect(more.status == 0, "\(more.stderr)")
        #expect(try lastJSON(more)["ids"]?.array?.count == 2)
    }

    @Test("--save-state then --load-state continues the run exactly", arguments: LanguageCLITests.models)
    func stateFiles(name: String) throws {
        let model = fixtureDirectory + "/pretrained/" + name
        let path = temporaryPath("state.safetensors")
        defer { unlink(path) }
        let whole = try runSSM(["generate", "--model", model, "--prompt-ids", "267,338,420,462,260,468,382,534,587", "--max-new-tokens", "10", "--json"])
        let head = try runSSM(["generate", "--model", model, "--prompt-ids", "267,338,420,462", "--max-new-tokens", "0", "--save-state", path, "--json"])
        #expect(head.status == 0, "\(head.stderr)")
        let rest = try runSSM(["generate", "--model", model, "--load-state", path, "--prompt-ids", "260,468,382,534,587", "--max-new-tokens", "10", "--json"])
        #expect(rest.status == 0, "\(rest.stderr)")
        let (jr, jw) = (try lastJSON(rest), try lastJSON(whole))
        #expect(jr["ids"] == jw["ids"])
    }

    @Test("tokenize: --text and --decode round-trip")
    func tokenize() throws {
        let t = try runSSM(["tokenize", "--tokenizer", Self.model, "--text", "The quick fox", "--json"])
        #expect(t.status == 0)
        let ids = try #require(try lastJSON(t)["ids"]?.array).map { "\($0.integer!)" }.joined(separator: ",")
        let d = try runSSM(["tokenize", "--tokenizer", Self.model, "--decode", ids, "--json"])
        let jd = try lastJSON(d)
        #expect(d.status == 0 && jd["text"]?.string == "The quick fox")
    }

    @Test("eval lm writes the logits transformers computed", arguments: LanguageCLITests.models)
    func evalLM(name: String) throws {
        let model = fixtureDirectory + "/pretrained/" + name
        let expected = try SafeTensorsFile(path: fixtureDirectory + "/pretrained/\(name.replacingOccurrences(of: "-", with: "_"))_expected.safetensors")
        let (shape, inputIDs) = try expected.integers("input_ids")
        let (input, output) = (temporaryPath("in.safetensors"), temporaryPath("out.safetensors"))
        defer { unlink(input); unlink(output) }
        try SafeTensorsFile.write([("input_ids", .int64(shape: shape, values: inputIDs))], to: input)
        let e = try runSSM(["eval", "lm", "--model", model, "--input", input, "--output", output])
        #expect(e.status == 0, "\(e.stderr)")
        let logits = try SafeTensorsFile(path: output).tensor("logits", as: Float.self)
        let reference = try expected.tensor("logits", as: Float.self)
        #expect(logits.shape == reference.shape)
        let scale = reference.scalars.map(abs).max()!
        #expect(zip(logits.scalars, reference.scalars).map { abs($0 - $1) }.max()! / scale < 1e-4)
    }

    @Test("bench lm --json: a prefill row against its GEMMs and decode rows against the memory bound (bfloat16 copies for Mamba)",
          arguments: LanguageCLITests.models)
    func benchLM(name: String) throws {
        let r = try runSSM(["bench", "lm", "--model", fixtureDirectory + "/pretrained/" + name, "--prompt-lengths", "8,13", "--new-tokens", "3",
                            "--repeats", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try r.stdout.split(separator: "\n").map { try JSONValue.parse(Array($0.utf8)) }
        #expect(rows.filter { $0["op"]?.string == "prefill" }.count == 2)
        let decodes = rows.filter { $0["op"]?.string == "decode" }
        let mamba = name == "tiny-mamba"
        #expect(decodes.map { $0["decode_weights"]?.string } == (mamba ? ["native", "bfloat16"] : ["native"]))
        for row in rows {
            #expect((row["tokens_per_second"]?.double ?? 0) > 0)
            #expect((row["ratio_to_bound"]?.double ?? row["fraction_of_bound"]?.double ?? 0) > 0)
        }
        let bytes = decodes.compactMap { $0["bytes_per_token"]?.integer }
        if mamba { #expect(bytes.count == 2 && bytes[1] < bytes[0]) }
    }

    @Test("perplexity --json reports the perplexity, the tokens and the speed", arguments: LanguageCLITests.models)
    func perplexity(name: String) throws {
        let text = temporaryPath("text.txt")
        defer { unlink(text) }
        try FileIO.writeAtomically(Array("The quick fox sees the old river and then the cold tree watches the busy tree. ".utf8), to: text)
        let r = try runSSM(["perplexity", "--model", fixtureDirectory + "/pretrained/" + name, "--text", text, "--context", "8", "--stride", "4", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try lastJSON(r)
        #expect((j["perplexity"]?.double ?? 0) > 1 && (j["tokens_per_second"]?.double ?? 0) > 0)
    }

    @Test("bad input: a missing model, ids out of range, an unknown model type, a malformed tokenizer — one line, non-zero, nothing written",
          arguments: [
            (["generate", "--model", "/nonexistent", "--prompt-ids", "1"], "/nonexistent"),
            (["generate", "--model", LanguageCLITests.model, "--prompt-ids", "1,99999"], "ids"),
            (["generate", "--model", LanguageCLITests.model, "--prompt-ids", "1,x"], "--prompt-ids"),
            (["generate", "--model", LanguageCLITests.model, "--prompt-ids", "1", "--top-p", "2", "--temperature", "1"], "top-p"),
            (["tokenize", "--tokenizer", "/nonexistent.json", "--text", "a"], "/nonexistent.json"),
            (["tokenize", "--tokenizer", LanguageCLITests.model, "--decode", "5,100000"], "ids"),
          ])
    func badInput(arguments: [String], culprit: String) throws {
        let r = try runSSM(arguments)
        #expect(r.status != 0)
        #expect(r.stderr.hasPrefix("ssm: ") && r.stderr.contains(culprit), "\(r.stderr)")
    }

    @Test("eval lm refuses float input ids and a bad model folder without writing the output")
    func evalBadInput() throws {
        let (input, output) = (temporaryPath("in.safetensors"), temporaryPath("out.safetensors"))
        defer { unlink(input); unlink(output) }
        try SafeTensorsFile.write([("input_ids", .float32(Tensor(shape: [1, 2], scalars: [1, 2])))], to: input)
        let r = try runSSM(["eval", "lm", "--model", Self.model, "--input", input, "--output", output])
        #expect(r.status != 0 && r.stderr.contains("input_ids"))
        #expect(access(output, F_OK) != 0)
        let configless = temporaryPath("model")
        try FileIO.makeDirectories(configless)
        try SafeTensorsFile.write([("input_ids", .int64(shape: [1, 2], values: [1, 2]))], to: input)
        let m = try runSSM(["eval", "lm", "--model", configless, "--input", input, "--output", output])
        #expect(m.status != 0 && m.stderr.contains("config.json"))
        #expect(access(output, F_OK) != 0)
    }
}
