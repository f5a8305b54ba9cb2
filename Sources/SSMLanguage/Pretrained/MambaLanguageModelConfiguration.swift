import SSMKit
import SSMTraining

/// The shape of a Mamba language model — embedding, `layers` residual blocks of RMSNorm and a
/// Mamba mixer, a final RMSNorm and the language-model head — read from a checkpoint's
/// `config.json`.
///
/// Two formats are read:
/// - Hugging Face transformers' `MambaForCausalLM` (`"model_type": "mamba"`): `hidden_size`,
///   `intermediate_size`, `state_size`, `conv_kernel`, `time_step_rank` (a number or `"auto"`),
///   `num_hidden_layers`, `vocab_size`, `layer_norm_epsilon`, `use_bias`, `use_conv_bias`,
///   `residual_in_fp32`, `tie_word_embeddings`, `hidden_act`, and the bos/eos/pad token ids;
/// - mamba_ssm's `MambaLMHeadModel` (no `model_type`; `d_model`, `n_layer`, `vocab_size`
///   rounded up to `pad_vocab_size_multiple`, `ssm_cfg`, `rms_norm`, `tie_embeddings`).
///
/// What would change the computation and is not supported is refused with the field's name: an
/// activation other than SiLU, LayerNorm instead of RMSNorm, Mamba-2 layers (`"mamba2"`), any
/// other model type. Fields that only steer training or initialization (`time_step_min`,
/// `initializer_range`, `rescale_prenorm_residual`, …) are ignored, as they do not change the
/// forward pass.
public struct MambaLanguageModelConfiguration: Sendable, Equatable {
    /// V, the number of token ids (rows of the embedding).
    public var vocabulary: Int
    /// The Mamba mixer of every block (M = hidden size, E, N, K, R, biases).
    public var mixer: MambaConfiguration
    public var layers: Int
    /// ε of every RMSNorm.
    public var normEpsilon: Double
    /// Whether the head reuses the embedding (`lm_head.weight` may then be absent).
    public var tiedEmbeddings: Bool
    /// Whether the residual stream is kept in float32 (always true here: SSMKit computes in
    /// Float or Double).
    public var residualInFloat32: Bool
    public var bosTokenID: Int?, eosTokenID: Int?, padTokenID: Int?

    /// M, the model width.
    public var width: Int { mixer.modelWidth }

    public init(vocabulary: Int, mixer: MambaConfiguration, layers: Int, normEpsilon: Double = 1e-5, tiedEmbeddings: Bool = true,
                bosTokenID: Int? = 0, eosTokenID: Int? = 0, padTokenID: Int? = 0) throws(PretrainedError) {
        guard vocabulary >= 1 else { throw .argument(name: "vocabulary", expected: "a positive count, got \(vocabulary)") }
        guard layers >= 1 else { throw .argument(name: "layers", expected: "a positive count, got \(layers)") }
        guard normEpsilon.isFinite, normEpsilon > 0 else { throw .argument(name: "normEpsilon", expected: "a finite ε > 0, got \(normEpsilon)") }
        (self.vocabulary, self.mixer, self.layers, self.normEpsilon, self.tiedEmbeddings) = (vocabulary, mixer, layers, normEpsilon, tiedEmbeddings)
        residualInFloat32 = true
        (self.bosTokenID, self.eosTokenID, self.padTokenID) = (bosTokenID, eosTokenID, padTokenID)
    }

    /// Reads `config.json` (the file, or a folder holding it).
    public init(contentsOf path: String) throws(PretrainedError) {
        let file = try JSONFile(path.hasSuffix(".json") ? path : path + "/config.json")
        try self.init(json: file)
    }

    init(json file: JSONFile) throws(PretrainedError) {
        let root = file.root
        let fields = Fields(file: file.path, root: root)
        if let type = root["model_type"] {
            guard let name = type.string else { throw .field(file: file.path, field: "model_type", expected: "a string") }
            guard name == "mamba" else {
                throw .field(file: file.path, field: "model_type",
                             expected: "\"mamba\" (MambaForCausalLM), got \"\(name)\"\(name == "mamba2" ? " (Mamba-2 is not supported yet)" : "")")
            }
            try self.init(huggingFace: fields)
        } else if root["d_model"] != nil {
            try self.init(mambaSSM: fields)
        } else {
            throw .field(file: file.path, field: "model_type", expected: "\"mamba\" (or a mamba_ssm config with d_model and n_layer)")
        }
    }

    private init(huggingFace f: Fields) throws(PretrainedError) {
        let activation = try f.string("hidden_act", default: "silu")
        guard activation == "silu" else { throw .field(file: f.file, field: "hidden_act", expected: "\"silu\", got \"\(activation)\"") }
        let hidden = try f.positive("hidden_size")
        let expand = try f.positive("expand", default: 2)
        let inner = try f.positive("intermediate_size", default: expand * hidden)
        let rank: Int
        if f.root["time_step_rank"]?.string == "auto" { rank = (hidden + 15) / 16 } else { rank = try f.positive("time_step_rank", default: (hidden + 15) / 16) }
        let (state, conv) = (try f.positive("state_size", default: 16), try f.positive("conv_kernel", default: 4))
        let (convBias, bias) = (try f.bool("use_conv_bias", default: true), try f.bool("use_bias", default: false))
        let mixer: MambaConfiguration
        do {
            mixer = try MambaConfiguration(modelWidth: hidden, state: state, convWidth: conv, innerWidth: inner, dtRank: rank,
                                           convBias: convBias, projectionBias: bias)
        } catch { throw .field(file: f.file, field: "(sizes)", expected: error.description) }
        try self.init(vocabulary: f.positive("vocab_size"), mixer: mixer, layers: f.positive("num_hidden_layers"),
                      normEpsilon: f.positiveReal("layer_norm_epsilon", default: 1e-5),
                      tiedEmbeddings: f.bool("tie_word_embeddings", default: true),
                      bosTokenID: f.tokenID("bos_token_id"), eosTokenID: f.tokenID("eos_token_id"), padTokenID: f.tokenID("pad_token_id"))
        _ = try f.bool("residual_in_fp32", default: true)
    }

    private init(mambaSSM f: Fields) throws(PretrainedError) {
        let hidden = try f.positive("d_model")
        guard try f.bool("rms_norm", default: true) else { throw .field(file: f.file, field: "rms_norm", expected: "true (LayerNorm blocks are not supported)") }
        if let layer = f.root["ssm_cfg"]?["layer"]?.string, layer != "Mamba1" {
            throw .field(file: f.file, field: "ssm_cfg.layer", expected: "\"Mamba1\", got \"\(layer)\"")
        }
        let ssm = Fields(file: f.file, root: f.root["ssm_cfg"] ?? .object([]), prefix: "ssm_cfg.")
        let expand = try ssm.positive("expand", default: 2)
        let rank: Int
        if ssm.root["dt_rank"]?.string == "auto" { rank = (hidden + 15) / 16 } else { rank = try ssm.positive("dt_rank", default: (hidden + 15) / 16) }
        var vocabulary = try f.positive("vocab_size")
        let multiple = try f.positive("pad_vocab_size_multiple", default: 8)
        if vocabulary % multiple != 0 { vocabulary += multiple - vocabulary % multiple }
        let (state, conv) = (try ssm.positive("d_state", default: 16), try ssm.positive("d_conv", default: 4))
        let (convBias, bias) = (try ssm.bool("conv_bias", default: true), try ssm.bool("bias", default: false))
        let mixer: MambaConfiguration
        do {
            mixer = try MambaConfiguration(modelWidth: hidden, state: state, convWidth: conv, innerWidth: expand * hidden, dtRank: rank,
                                           convBias: convBias, projectionBias: bias)
        } catch { throw .field(file: f.file, field: "ssm_cfg", expected: error.description) }
        try self.init(vocabulary: vocabulary, mixer: mixer, layers: f.positive("n_layer"), normEpsilon: 1e-5,
                      tiedEmbeddings: f.bool("tie_embeddings", default: true), bosTokenID: 0, eosTokenID: 0, padTokenID: 0)
    }
}

/// Typed reads of a JSON object's fields, each error naming the file and the field.
struct Fields {
    let file: String
    let root: JSONValue
    var prefix = ""

    func present(_ key: String) -> JSONValue? {
        guard let v = root[key], !v.isNull else { return nil }
        return v
    }

    func positive(_ key: String, default value: Int? = nil) throws(PretrainedError) -> Int {
        guard let v = present(key) else {
            if let value { return value }
            throw .field(file: file, field: prefix + key, expected: "a positive integer (the field is missing)")
        }
        guard let n = v.integer, n >= 1 else { throw .field(file: file, field: prefix + key, expected: "a positive integer") }
        return n
    }

    func positiveReal(_ key: String, default value: Double) throws(PretrainedError) -> Double {
        guard let v = present(key) else { return value }
        guard let x = v.double, x.isFinite, x > 0 else { throw .field(file: file, field: prefix + key, expected: "a finite number > 0") }
        return x
    }

    func bool(_ key: String, default value: Bool) throws(PretrainedError) -> Bool {
        guard let v = present(key) else { return value }
        guard let b = v.bool else { throw .field(file: file, field: prefix + key, expected: "true or false") }
        return b
    }

    func string(_ key: String, default value: String) throws(PretrainedError) -> String {
        guard let v = present(key) else { return value }
        guard let s = v.string else { throw .field(file: file, field: prefix + key, expected: "a string") }
        return s
    }

    /// A token id (a non-negative integer), or nil when absent or null.
    func tokenID(_ key: String) throws(PretrainedError) -> Int? {
        guard let v = present(key) else { return nil }
        if let n = v.integer, n >= 0 { return n }
        // Some configs list several end tokens; the first is the one generation stops at by default.
        if let list = v.array, let first = list.first?.integer, first >= 0 { return first }
        throw .field(file: file, field: prefix + key, expected: "a non-negative token id")
    }
}
