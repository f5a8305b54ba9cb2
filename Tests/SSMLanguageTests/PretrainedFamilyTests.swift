import Testing
@testable import SSMKit
@testable import SSMLanguage
import SSMTraining

/// One tiny pretrained fixture of Tests/Fixtures/pretrained: a model folder made with
/// transformers and what transformers computed with it (`<name>_expected.safetensors`).
struct PretrainedFixture: Sendable, CustomTestStringConvertible {
    enum Family: Sendable { case mamba, mamba2 }
    let name: String
    let family: Family

    static let mamba = PretrainedFixture(name: "tiny-mamba", family: .mamba)
    static let mamba2 = PretrainedFixture(name: "tiny-mamba2", family: .mamba2)
    static let all = [mamba, mamba2]

    var folder: String { pretrainedFixtures + "/" + name }
    var testDescription: String { name }

    func expected() throws -> SafeTensorsFile {
        try SafeTensorsFile(path: pretrainedFixtures + "/" + name.replacingOccurrences(of: "-", with: "_") + "_expected.safetensors")
    }

    func ids(_ tensor: String) throws -> (shape: [Int], values: [Int]) { try expected().integers(tensor) }

    func reference(_ tensor: String) throws -> [Double] { try expected().tensor(tensor, as: Double.self).scalars }
}

/// The checks every family of pretrained model passes against transformers, run on the tiny
/// Mamba and Mamba-2 fixtures.
@Suite("pretrained language models (Mamba and Mamba-2)")
struct PretrainedFamilyTests {
    static func maxRelative<T: BinaryFloatingPoint>(_ a: [T], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        let scale = b.map(abs).max() ?? 1
        return zip(a, b).map { abs(Double($0) - $1) }.max()! / scale
    }

    @Test("full logits equal transformers' (F32 within 1e-4 relative) and an independent float64 forward (F64 within 1e-9)",
          arguments: PretrainedFixture.all)
    func logits(_ f: PretrainedFixture) throws {
        switch f.family {
        case .mamba: try logits(MambaLanguageModel<Float>(directory: f.folder), MambaLanguageModel<Double>(directory: f.folder), f)
        case .mamba2: try logits(Mamba2LanguageModel<Float>(directory: f.folder), Mamba2LanguageModel<Double>(directory: f.folder), f)
        }
    }

    func logits<A, B>(_ float: LanguageModel<A>, _ double: LanguageModel<B>, _ f: PretrainedFixture) throws {
        let (shape, ids) = try f.ids("input_ids")
        #expect(Self.maxRelative(try float.logits(ids, batch: shape[0], length: shape[1]), try f.reference("logits")) < 1e-4)
        #expect(Self.maxRelative(try double.logits(ids, batch: shape[0], length: shape[1]), try f.reference("logits_f64")) < 1e-9)
    }

    @Test("greedy continuations equal transformers' generate token for token, alone and as a batch", arguments: PretrainedFixture.all)
    func greedy(_ f: PretrainedFixture) throws {
        switch f.family {
        case .mamba: try greedy(MambaLanguageModel<Float>(directory: f.folder), f)
        case .mamba2: try greedy(Mamba2LanguageModel<Float>(directory: f.folder), f)
        }
    }

    func greedy<Mixer>(_ model: LanguageModel<Mixer>, _ f: PretrainedFixture) throws {
        let generator = Generator(model: model)
        let prompt = try f.ids("prompt_ids").values
        let greedy = try f.ids("greedy_ids").values
        let one = try generator.generate([prompt], options: GenerationOptions(maxNewTokens: greedy.count))
        #expect(one.ids == [greedy])
        let (batchShape, batchPrompts) = try f.ids("batch_prompt_ids")
        let (outShape, batchGreedy) = try f.ids("batch_greedy_ids")
        let P = batchShape[1], N = outShape[1]
        let prompts = (0 ..< batchShape[0]).map { Array(batchPrompts[$0 * P ..< ($0 + 1) * P]) }
        let batch = try generator.generate(prompts, options: GenerationOptions(maxNewTokens: N))
        #expect(batch.ids == (0 ..< outShape[0]).map { Array(batchGreedy[$0 * N ..< ($0 + 1) * N]) })
        // Prompts of different lengths in one batch give each prompt's own continuation.
        let mixed = try generator.generate([prompt, prompts[0]], options: GenerationOptions(maxNewTokens: 8))
        #expect(mixed.ids[0] == Array(greedy.prefix(8)))
        #expect(mixed.ids[1] == Array(batch.ids[0].prefix(8)))
    }

    @Test("the state after the prompt equals transformers' cache (conv and SSM states); the last logits too", arguments: PretrainedFixture.all)
    func stateAfterPrompt(_ f: PretrainedFixture) throws {
        switch f.family {
        case .mamba: try stateAfterPrompt(MambaLanguageModel<Double>(directory: f.folder), f)
        case .mamba2: try stateAfterPrompt(Mamba2LanguageModel<Double>(directory: f.folder), f)
        }
    }

    func stateAfterPrompt<Mixer>(_ model: LanguageModel<Mixer>, _ f: PretrainedFixture) throws {
        let prompt = try f.ids("prompt_ids").values
        var state = try model.makeState(batch: 1)
        let last = try model.prefill(prompt, length: prompt.count, state: &state, chunk: 4)
        #expect(Self.maxRelative(last, try f.reference("last_logits")) < 1e-5)
        let shapes = model.mixers[0].stateShapes(batch: 1)
        for i in 0 ..< model.configuration.layers {
            #expect(try f.expected().entry("conv_state_\(i)")?.shape == shapes.conv)
            #expect(try f.expected().entry("ssm_state_\(i)")?.shape == shapes.ssm)
            #expect(Self.maxRelative(state.layers[i].conv, try f.reference("conv_state_\(i)")) < 1e-5, "conv \(i)")
            #expect(Self.maxRelative(state.layers[i].ssm, try f.reference("ssm_state_\(i)")) < 1e-5, "ssm \(i)")
        }
    }

    @Test("prefill in chunks (1, 4, 16, 37 tokens) and step mode give the full forward's logits (Double, ≤ 1e-12); L = 1",
          arguments: PretrainedFixture.all)
    func modesAgree(_ f: PretrainedFixture) throws {
        switch f.family {
        case .mamba: try modesAgree(MambaLanguageModel<Double>(directory: f.folder), f)
        case .mamba2: try modesAgree(Mamba2LanguageModel<Double>(directory: f.folder), f)
        }
    }

    func modesAgree<Mixer>(_ model: LanguageModel<Mixer>, _ f: PretrainedFixture) throws where Mixer.Scalar == Double {
        let (shape, ids) = try f.ids("input_ids")
        let (B, L, V) = (shape[0], shape[1], model.configuration.vocabulary)
        let full = try model.logits(ids, batch: B, length: L)
        func rows(_ t: Int) -> [Double] {
            var out: [Double] = []
            for b in 0 ..< B { out += full[(b * L + t) * V ..< (b * L + t + 1) * V] }
            return out
        }
        let lastRows = rows(L - 1)
        for chunk in [1, 4, 16, 37] {
            var state = try model.makeState(batch: B)
            let last = try model.prefill(ids, length: L, state: &state, chunk: chunk)
            #expect(Self.maxRelative(last, lastRows) <= 1e-12, "chunk \(chunk)")
            #expect(state.tokens == L)
        }
        var state = try model.makeState(batch: B)
        var worst = 0.0
        for t in 0 ..< L {
            let logits = try model.step((0 ..< B).map { ids[$0 * L + t] }, state: &state)
            worst = max(worst, Self.maxRelative(logits, rows(t)))
        }
        #expect(worst <= 1e-12)
        let one = try model.logits([ids[0]], batch: 1, length: 1)
        #expect(Self.maxRelative(one, Array(full[0 ..< V])) <= 1e-12)
    }

    @Test("a saved state, restored, continues exactly as the uninterrupted run; another family's state is refused",
          arguments: PretrainedFixture.all)
    func saveRestore(_ f: PretrainedFixture) throws {
        let path = temporaryPath("state.safetensors")
        defer { unlinkPath(path) }
        switch f.family {
        case .mamba:
            try saveRestore(MambaLanguageModel<Float>(directory: f.folder), f, path: path)
            #expect(throws: PretrainedError.self) { try RecurrentStateFile.read(path, for: Mamba2LanguageModel<Float>(directory: PretrainedFixture.mamba2.folder)) }
        case .mamba2:
            try saveRestore(Mamba2LanguageModel<Float>(directory: f.folder), f, path: path)
            #expect(throws: PretrainedError.self) { try RecurrentStateFile.read(path, for: MambaLanguageModel<Float>(directory: PretrainedFixture.mamba.folder)) }
        }
    }

    func saveRestore<Mixer>(_ model: LanguageModel<Mixer>, _ f: PretrainedFixture, path: String) throws {
        let generator = Generator(model: model)
        let prompt = try f.ids("prompt_ids").values
        let greedy = try f.ids("greedy_ids").values
        let head = try generator.generate([Array(prompt.prefix(5))], options: GenerationOptions(maxNewTokens: 0))
        try RecurrentStateFile.write(Generator.Start(state: head.state, nextLogits: head.nextLogits, history: head.history), of: model, to: path)
        let start = try RecurrentStateFile.read(path, for: model)
        let rest = try generator.generate([Array(prompt.dropFirst(5))], options: GenerationOptions(maxNewTokens: greedy.count), from: start)
        #expect(rest.ids == [greedy])
        #expect(rest.history[0] == prompt + greedy)
        // Continue again from the end of that run: the same as generating 24 + 8 at once.
        let longer = try generator.generate([prompt], options: GenerationOptions(maxNewTokens: greedy.count + 8))
        let again = try generator.generate([[]], options: GenerationOptions(maxNewTokens: 8),
                                           from: Generator.Start(state: rest.state, nextLogits: rest.nextLogits, history: rest.history))
        #expect(rest.ids[0] + again.ids[0] == longer.ids[0])

        // Prompts of two lengths: histories of two lengths are saved, restored and continued.
        let prompts = [Array(prompt.prefix(5)), Array(prompt.prefix(3))]
        let noStop = { (n: Int) throws in try GenerationOptions(maxNewTokens: n, stopTokens: []) }
        let straight = try generator.generate(prompts, options: noStop(5))
        let pair = try generator.generate(prompts, options: noStop(2))
        try RecurrentStateFile.write(Generator.Start(state: pair.state, nextLogits: pair.nextLogits, history: pair.history), of: model, to: path)
        let restored = try RecurrentStateFile.read(path, for: model)
        #expect(restored.history == pair.history && restored.history.map(\.count) == [7, 5])
        #expect(restored.nextLogits == pair.nextLogits)
        let more = try generator.generate([[], []], options: noStop(3), from: restored)
        #expect(zip(pair.ids, more.ids).map { $0 + $1 } == straight.ids)

        // A callback that returns false stops every sequence at once: sequence 1 draws nothing
        // and keeps its prefilled state, sequence 0's one token has been fed through.
        var calls = 0
        let cut = try generator.generate(prompts, options: noStop(4)) { _, _ in
            calls += 1
            return false
        }
        #expect(calls == 1 && cut.ids.map(\.count) == [1, 0])
        let resumed = try generator.generate([[], []], options: noStop(3),
                                             from: Generator.Start(state: cut.state, nextLogits: cut.nextLogits, history: cut.history))
        #expect(cut.ids[0] + resumed.ids[0] == Array(straight.ids[0].prefix(4)))
        #expect(resumed.ids[1] == Array(straight.ids[1].prefix(3)))

        // A state file whose logits are not finite is refused when read.
        var poisoned = Generator.Start(state: pair.state, nextLogits: pair.nextLogits, history: pair.history)
        poisoned.nextLogits[1] = .nan
        try RecurrentStateFile.write(poisoned, of: model, to: path)
        #expect(throws: PretrainedError.self) { try RecurrentStateFile.read(path, for: model) }
    }

    @Test("Mamba-2: a mamba_ssm config (ssm_cfg.layer Mamba2, the mamba_ssm embedding name) and Python's bare Infinity load the same model")
    func mamba2Formats() throws {
        let f = PretrainedFixture.mamba2
        let (shape, ids) = try f.ids("input_ids")
        let reference = try Mamba2LanguageModel<Float>(directory: f.folder).logits(ids, batch: shape[0], length: shape[1])
        let weights = try SafeTensorsFile(path: f.folder + "/model.safetensors")
        let renamed = try weights.names.map { name in
            (name: name == "backbone.embeddings.weight" ? "backbone.embedding.weight" : name, value: SafeTensorsValue(try weights.tensor(name, as: Float.self)))
        }
        let native = temporaryPath("mamba2-ssm")
        try FileIO.makeDirectories(native)
        try SafeTensorsFile.write(renamed, to: native + "/model.safetensors")
        let config = """
            {"d_model": 32, "d_intermediate": 0, "n_layer": 2, "vocab_size": 912, "attn_layer_idx": [], "rms_norm": true,
             "residual_in_fp32": true, "pad_vocab_size_multiple": 16, "tie_embeddings": true,
             "ssm_cfg": {"layer": "Mamba2", "d_state": 16, "headdim": 16, "ngroups": 2, "chunk_size": 16, "dt_limit": [0.0, Infinity]}}
            """
        try FileIO.writeAtomically(Array(config.utf8), to: native + "/config.json")
        #expect(try Mamba2LanguageModel<Float>(directory: native).logits(ids, batch: shape[0], length: shape[1]) == reference)
        // transformers' config with its limit written by an older Python json: [0.0, Infinity].
        let hf = String(decoding: try FileIO.readAll(f.folder + "/config.json"), as: UTF8.self)
        let bare = hf.replacingOccurrences(of: "{\n      \"__float__\": \"Infinity\"\n    }", with: "Infinity")
        #expect(bare != hf)
        let c = try LanguageModelConfiguration(json: JSONFile(writeTemporary(bare), nonFiniteNumbers: true))
        guard case .mamba2(let m) = c.mixer else { Issue.record("not read as Mamba-2"); return }
        #expect(m.timeStepLimit == 0 ... .infinity && m.heads == 4 && m.groups == 2 && m.chunkLength == 16 && m.headDimension == 16)
    }

    @Test("a folder of the other family is refused naming model_type; Mamba-2 refuses bfloat16 decode weights; unsupported Mamba-2 fields are refused")
    func wrongFamily() throws {
        #expect { try MambaLanguageModel<Float>(directory: PretrainedFixture.mamba2.folder) } throws: { error in
            guard case let PretrainedError.field(_, field, expected) = error else { return false }
            return field == "model_type" && expected.contains("Mamba2ForCausalLM")
        }
        #expect(throws: PretrainedError.self) { try Mamba2LanguageModel<Float>(directory: PretrainedFixture.mamba.folder) }
        #expect(throws: PretrainedError.self) { try Mamba2LanguageModel<Float>(directory: PretrainedFixture.mamba2.folder, decodeWeights: .bfloat16) }
        let hf = String(decoding: try FileIO.readAll(PretrainedFixture.mamba2.folder + "/config.json"), as: UTF8.self)
        for (from, to, field) in [("\"num_heads\": 4", "\"num_heads\": 3", "num_heads"),
                                  ("\"norm_before_gate\": false", "\"norm_before_gate\": true", "norm_before_gate"),
                                  ("\"rms_norm\": true", "\"rms_norm\": false", "rms_norm"),
                                  ("\"n_groups\": 2", "\"n_groups\": 3", "(sizes)"),
                                  ("\"time_step_limit\": [\n    0.0,", "\"time_step_limit\": [\n    -1.0,", "time_step_limit")] {
            let edited = hf.replacingOccurrences(of: from, with: to)
            #expect(edited != hf, "\(from)")
            #expect(performing: { try LanguageModelConfiguration(contentsOf: writeTemporary(edited)) }, throws: { error in
                guard case let PretrainedError.field(_, f, _) = error else { return false }
                return f == field
            })
        }
    }
}

/// Writes `text` to a fresh temporary .json file and returns its path.
func writeTemporary(_ text: String) throws -> String {
    let path = temporaryPath("config.json")
    try FileIO.writeAtomically(Array(text.utf8), to: path)
    return path
}
