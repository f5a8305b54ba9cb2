import Testing
@testable import SSMKit
@testable import SSMLanguage
import SSMTraining

/// The tiny MambaForCausalLM of Tests/Fixtures/pretrained against what transformers computed.
@Suite("pretrained Mamba language model")
struct MambaLanguageModelTests {
    static let folder = pretrainedFixtures + "/tiny-mamba"
    static let expected = Result { try SafeTensorsFile(path: pretrainedFixtures + "/tiny_mamba_expected.safetensors") }

    static func ids(_ name: String) throws -> (shape: [Int], values: [Int]) { try expected.get().integers(name) }

    static func maxRelative<T: BinaryFloatingPoint>(_ a: [T], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        let scale = b.map(abs).max() ?? 1
        return zip(a, b).map { abs(Double($0) - $1) }.max()! / scale
    }

    @Test("a sharded checkpoint and one under the mamba_ssm embedding name load the same model")
    func variants() throws {
        let (shape, ids) = try Self.ids("input_ids")
        let f32 = try MambaLanguageModel<Float>(directory: Self.folder).logits(ids, batch: shape[0], length: shape[1])
        for variant in ["tiny-mamba-sharded", "tiny-mamba-ssmname"] {
            let other = try MambaLanguageModel<Float>(directory: pretrainedFixtures + "/" + variant)
            #expect(try other.logits(ids, batch: shape[0], length: shape[1]) == f32, "\(variant)")
        }
    }

    @Test("BF16 weights load and compute in F32 as transformers does (within 1e-4); F16 weights load")
    func halfWeights() throws {
        let (shape, ids) = try Self.ids("input_ids")
        let bf16 = try MambaLanguageModel<Float>(directory: pretrainedFixtures + "/tiny-mamba-bf16")
        let reference = try Self.expected.get().tensor("logits_bf16", as: Double.self).scalars
        #expect(Self.maxRelative(try bf16.logits(ids, batch: shape[0], length: shape[1]), reference) < 1e-4)
        // F16 rounds each weight to 11 significant bits: the logits stay within 1% of F32's.
        let f16 = try MambaLanguageModel<Float>(directory: pretrainedFixtures + "/tiny-mamba-f16")
        let f32 = try Self.expected.get().tensor("logits", as: Double.self).scalars
        #expect(Self.maxRelative(try f16.logits(ids, batch: shape[0], length: shape[1]), f32) < 1e-2)
    }

    @Test("decoding with bfloat16 weight copies equals native decoding of a BF16 checkpoint (the copies are exact)")
    func bfloat16Decode() throws {
        let folder = pretrainedFixtures + "/tiny-mamba-bf16"
        let native = try MambaLanguageModel<Float>(directory: folder)
        let halved = try MambaLanguageModel<Float>(directory: folder, decodeWeights: .bfloat16)
        #expect(halved.bytesReadPerToken < native.bytesReadPerToken * 6 / 10)
        let prompt = try Self.ids("prompt_ids").values
        var (a, b) = (try native.makeState(batch: 1), try halved.makeState(batch: 1))
        _ = try native.prefill(prompt, length: prompt.count, state: &a)
        _ = try halved.prefill(prompt, length: prompt.count, state: &b)
        var worst = 0.0
        for id in [5, 17, 300, 2, 911] {
            let x = try native.step([id], state: &a), y = try halved.step([id], state: &b)
            worst = max(worst, Self.maxRelative(y, x.map(Double.init)))
        }
        // The same products of the same values; only the vector code's summation order may differ.
        #expect(worst <= 1e-6)
        #expect(throws: PretrainedError.self) { try MambaLanguageModel<Double>(directory: folder, decodeWeights: .bfloat16) }
    }

    @Test("a seeded sampler repeats; sampling options out of range are refused")
    func sampling() throws {
        let model = try MambaLanguageModel<Float>(directory: Self.folder)
        let generator = Generator(model: model)
        let prompt = try Self.ids("prompt_ids").values
        let sampling = try SamplingOptions(temperature: 0.9, topK: 40, topP: 0.95, minP: 0.02, repetitionPenalty: 1.3, seed: 7)
        let options = try GenerationOptions(maxNewTokens: 20, sampling: sampling)
        let a = try generator.generate([prompt], options: options), b = try generator.generate([prompt], options: options)
        #expect(a.ids == b.ids)
        var other = options
        other.sampling.seed = 8
        #expect(try generator.generate([prompt], options: other).ids != a.ids)
        // top-k 1 is greedy whatever the temperature.
        let greedy = try Self.ids("greedy_ids").values
        let topOne = try GenerationOptions(maxNewTokens: 10, sampling: SamplingOptions(temperature: 5, topK: 1, seed: 1))
        #expect(try generator.generate([prompt], options: topOne).ids == [Array(greedy.prefix(10))])
        #expect(throws: PretrainedError.self) { try SamplingOptions(temperature: -1) }
        #expect(throws: PretrainedError.self) { try SamplingOptions(temperature: 1, topP: 0) }
        #expect(throws: PretrainedError.self) { try SamplingOptions(temperature: 1, minP: 1.5) }
        #expect(throws: PretrainedError.self) { try SamplingOptions(temperature: 1, topK: 0) }
        #expect(throws: PretrainedError.self) { try SamplingOptions(repetitionPenalty: 0) }
        // Scores that are not numbers do not crash a sampler (a NaN top-k threshold keeps nothing).
        var nan = Sampler(try SamplingOptions(temperature: 1, topK: 2, seed: 3))
        #expect((0 ..< 3).contains(nan.next([Float.nan, 1, 2], history: [])))
        var greedyNaN = Sampler(try SamplingOptions())
        #expect(greedyNaN.next([Float.nan, 1, 2, 2], history: []) == 2)
        #expect(throws: PretrainedError.self) { try GenerationOptions(maxNewTokens: -1) }
    }

    @Test("perplexity: one window matches the NLL from the full logits; overlapping windows score every token but the first, disjoint ones skip each window's first token")
    func perplexity() throws {
        let model = try MambaLanguageModel<Double>(directory: Self.folder)
        let ids = try Self.ids("input_ids").values
        let full = try model.perplexity(ids, context: ids.count)
        #expect(full.scoredTokens == ids.count - 1)
        // By hand from the full forward.
        let V = model.configuration.vocabulary
        let logits = try model.logits(ids, batch: 1, length: ids.count)
        var nll = 0.0
        for t in 1 ..< ids.count {
            let row = Array(logits[(t - 1) * V ..< t * V])
            let top = row.max()!
            nll += top + Double.log(row.map { Double.exp($0 - top) }.reduce(0, +)) - row[ids[t]]
        }
        #expect(abs(full.negativeLogLikelihood - nll) <= 1e-9 * nll)
        let windows = try model.perplexity(ids, context: 16, stride: 8)
        #expect(windows.scoredTokens == ids.count - 1)
        let disjoint = try model.perplexity(ids, context: 16)
        #expect(disjoint.scoredTokens == ids.count - 1 - (ids.count - 1) / 16)
        #expect(throws: PretrainedError.self) { try model.perplexity(ids, context: 1) }
        #expect(throws: PretrainedError.self) { try model.perplexity(ids, context: 8, stride: 9) }
    }

    @Test("token ids out of range and empty prompts are refused, naming the argument")
    func badIDs() throws {
        let model = try MambaLanguageModel<Float>(directory: Self.folder)
        let V = model.configuration.vocabulary
        #expect(throws: PretrainedError.argument(name: "ids", expected: "token ids in 0 ..< \(V) (the vocabulary), got \(V)")) {
            try model.logits([1, V], batch: 1, length: 2)
        }
        #expect(throws: PretrainedError.self) { try model.logits([1, -1], batch: 1, length: 2) }
        #expect(throws: PretrainedError.self) { try model.logits([1, 2, 3], batch: 2, length: 2) }
        #expect(throws: PretrainedError.self) { try Generator(model: model).generate([[]], options: GenerationOptions()) }
        var state = try model.makeState(batch: 2)
        #expect(throws: PretrainedError.self) { try model.step([1], state: &state) }
    }
}
