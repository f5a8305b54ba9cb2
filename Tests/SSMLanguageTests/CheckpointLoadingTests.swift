import Testing
@testable import SSMKit
@testable import SSMLanguage

/// Loading refuses bad model folders with one error naming the file and the field or tensor.
@Suite("pretrained checkpoint loading")
struct CheckpointLoadingTests {
    static let source = pretrainedFixtures + "/tiny-mamba"

    /// A model folder made from the fixture's, with `edit` applied to its config and tensors.
    func folder(config edit: (String) -> String = { $0 },
                tensors change: ([(name: String, value: SafeTensorsValue)]) -> [(name: String, value: SafeTensorsValue)] = { $0 }) throws -> String {
        let path = temporaryPath("model")
        try FileIO.makeDirectories(path)
        let config = String(decoding: try FileIO.readAll(Self.source + "/config.json"), as: UTF8.self)
        try FileIO.writeAtomically(Array(edit(config).utf8), to: path + "/config.json")
        let file = try SafeTensorsFile(path: Self.source + "/model.safetensors")
        let tensors = try file.names.map { (name: $0, value: SafeTensorsValue(try file.tensor($0, as: Float.self))) }
        try SafeTensorsFile.write(change(tensors), to: path + "/model.safetensors")
        return path
    }

    func expectField(_ path: String, _ field: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) {
            try MambaLanguageModel<Float>(directory: path)
        } throws: { error in
            guard case let PretrainedError.field(file, f, _) = error else { return false }
            return file == path + "/config.json" && f == field
        }
    }

    func expectTensor(_ path: String, _ tensor: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) {
            try MambaLanguageModel<Float>(directory: path)
        } throws: { error in
            guard case let PretrainedError.tensor(_, t, _) = error else { return false }
            return t == tensor
        }
    }

    @Test("config.json: unsupported model type or activation, missing or malformed fields")
    func badConfigs() throws {
        expectField(try folder(config: { $0.replacingFirst("\"model_type\": \"mamba\"", "\"model_type\": \"mamba3\"") }), "model_type")
        expectField(try folder(config: { $0.replacingFirst("\"model_type\": \"mamba\"", "\"model_type\": \"llama\"") }), "model_type")
        expectField(try folder(config: { $0.replacingFirst("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"") }), "hidden_act")
        expectField(try folder(config: { $0.replacingFirst("\"hidden_size\": 32", "\"hidden_size\": -32") }), "hidden_size")
        expectField(try folder(config: { $0.replacingFirst("\"num_hidden_layers\": 2,", "") }), "num_hidden_layers")
        expectField(try folder(config: { $0.replacingFirst("\"use_bias\": false", "\"use_bias\": \"no\"") }), "use_bias")
        expectField(try folder(config: { _ in "{\"model_type\": " }), "(file)")
        #expect(throws: PretrainedError.self) { try MambaLanguageModel<Float>(directory: "/nonexistent-model") }
        // Sizes above 2^20, and sizes the files' 45k values cannot back (a million-token
        // vocabulary), are refused before anything is allocated.
        expectField(try folder(config: { $0.replacingFirst("\"vocab_size\": 912", "\"vocab_size\": 1099511627776") }), "vocab_size")
        #expect {
            try MambaLanguageModel<Float>(directory: try folder(config: { $0.replacingFirst("\"vocab_size\": 912", "\"vocab_size\": 1000000") }))
        } throws: { error in
            guard case let PretrainedError.argument(name, _) = error else { return false }
            return name == "configuration"
        }
    }

    @Test("tensors: missing, misshapen, non-finite, unexpected, an untied head absent")
    func badTensors() throws {
        expectTensor(try folder(tensors: { $0.filter { $0.name != "backbone.layers.1.mixer.A_log" } }), "backbone.layers.1.mixer.A_log")
        expectTensor(try folder(tensors: { $0.map { t in
            guard t.name == "backbone.norm_f.weight", case let .float32(x) = t.value else { return t }
            return (t.name, .float32(Tensor(shape: [x.count / 2, 2], scalars: x.scalars)))
        } }), "backbone.norm_f.weight")
        expectTensor(try folder(tensors: { $0.map { t in
            guard t.name == "backbone.layers.0.mixer.D", case var .float32(x) = t.value else { return t }
            x.scalars[3] = .nan
            return (t.name, .float32(x))
        } }), "backbone.layers.0.mixer.D")
        expectTensor(try folder(tensors: { $0 + [("backbone.layers.2.norm.weight", .float32(Tensor(shape: [32], scalars: .init(repeating: 1, count: 32))))] }),
                     "backbone.layers.2.norm.weight")
        expectTensor(try folder(config: { $0.replacingFirst("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false") }), "lm_head.weight")
        expectTensor(try folder(tensors: { $0.map { t in
            guard t.name == "backbone.layers.0.norm.weight" else { return t }
            return (t.name, .int64(shape: [32], values: .init(repeating: 1, count: 32)))
        } }), "backbone.layers.0.norm.weight")
    }

    @Test("an untied head is read from lm_head.weight")
    func untiedHead() throws {
        let path = try folder(config: { $0.replacingFirst("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false") }, tensors: { tensors in
            guard let embedding = tensors.first(where: { $0.name == "backbone.embeddings.weight" }), case let .float32(e) = embedding.value
            else { return tensors }
            return tensors + [("lm_head.weight", .float32(Tensor(shape: e.shape, scalars: e.scalars.map { -$0 })))]
        })
        let tied = try MambaLanguageModel<Float>(directory: Self.source), untied = try MambaLanguageModel<Float>(directory: path)
        #expect(try untied.logits([5, 6, 7], batch: 1, length: 3) == tied.logits([5, 6, 7], batch: 1, length: 3).map { -$0 })
    }
}

extension String {
    func replacingFirst(_ target: String, _ replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return replacingCharacters(in: r, with: replacement)
    }
}
