import SSMKit
import SSMTraining

/// The shape of a pretrained language model — embedding, `layers` residual blocks of RMSNorm
/// and a Mamba or Mamba-2 mixer, a final RMSNorm and the language-model head — read from a
/// checkpoint's `config.json`.
///
/// Three formats are read:
/// - transformers' `MambaForCausalLM` (`"model_type": "mamba"`): `hidden_size`,
///   `intermediate_size`, `state_size`, `conv_kernel`, `time_step_rank` (a number or `"auto"`),
///   `num_hidden_layers`, `vocab_size`, `layer_norm_epsilon`, `use_bias`, `use_conv_bias`,
///   `residual_in_fp32`, `tie_word_embeddings`, `hidden_act`, and the bos/eos/pad token ids;
/// - transformers' `Mamba2ForCausalLM` (`"model_type": "mamba2"`): `hidden_size`, `expand`,
///   `num_heads`, `head_dim`, `n_groups`, `state_size`, `conv_kernel`, `chunk_size`,
///   `time_step_limit` (a pair; infinity as Python writes it, `Infinity` or
///   `{"__float__": "Infinity"}`), `use_bias`, `use_conv_bias`, `layer_norm_epsilon` (also the
///   gated norm's ε, as there), `norm_before_gate`, `rms_norm`, and the fields common to both;
/// - mamba_ssm's `MambaLMHeadModel` (no `model_type`; `d_model`, `n_layer`, `vocab_size`
///   rounded up to `pad_vocab_size_multiple`, `ssm_cfg` with `"layer": "Mamba1"` (the default)
///   or `"Mamba2"`, `rms_norm`, `tie_embeddings`).
///
/// What would change the computation and is not supported is refused with the field's name: an
/// activation other than SiLU, LayerNorm instead of RMSNorm, the norm before the gate
/// (`norm_before_gate: true`), MLP or attention layers (`d_intermediate`, `attn_layer_idx`), a
/// partial SSM (`d_ssm`), D per head channel (`D_has_hdim`), any other model type. Fields that
/// only steer training or initialization (`time_step_min`, `initializer_range`,
/// `rescale_prenorm_residual`, …) are ignored, as they do not change the forward pass.
public struct LanguageModelConfiguration: Sendable, Equatable {
    /// The mixer of every block.
    public enum Mixer: Sendable, Equatable {
        case mamba(MambaConfiguration)
        case mamba2(Mamba2Configuration)
    }

    /// V, the number of token ids (rows of the embedding).
    public var vocabulary: Int
    /// The mixer of every block (its sizes and biases; M is the model width).
    public var mixer: Mixer
    public var layers: Int
    /// ε of every block's RMSNorm and of the final one.
    public var normEpsilon: Double
    /// Whether the head reuses the embedding (`lm_head.weight` may then be absent).
    public var tiedEmbeddings: Bool
    /// Whether the residual stream is kept in float32 (always true here: SSMKit computes in
    /// Float or Double).
    public var residualInFloat32: Bool
    public var bosTokenID: Int?, eosTokenID: Int?, padTokenID: Int?

    /// M, the model width.
    public var width: Int {
        switch mixer {
        case .mamba(let c): c.modelWidth
        case .mamba2(let c): c.modelWidth
        }
    }

    /// The Hugging Face architecture of these blocks (`MambaForCausalLM`, `Mamba2ForCausalLM`).
    public var architecture: String {
        switch mixer {
        case .mamba: MambaMixer<Float>.architecture
        case .mamba2: Mamba2Mixer<Float>.architecture
        }
    }

    public init(vocabulary: Int, mixer: Mixer, layers: Int, normEpsilon: Double = 1e-5, tiedEmbeddings: Bool = true,
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
        let file = try JSONFile(path.hasSuffix(".json") ? path : path + "/config.json", nonFiniteNumbers: true)
        try self.init(json: file)
    }

    init(json file: JSONFile) throws(PretrainedError) {
        let root = file.root
        let fields = Fields(file: file.path, root: root)
        if let type = root["model_type"] {
            guard let name = type.string else { throw .field(file: file.path, field: "model_type", expected: "a string") }
            switch name {
            case "mamba": try self.init(huggingFace: fields)
            case "mamba2": try self.init(huggingFaceMamba2: fields)
            default:
                throw .field(file: file.path, field: "model_type",
                             expected: "\"mamba\" (MambaForCausalLM) or \"mamba2\" (Mamba2ForCausalLM), got \"\(name)\"")
            }
        } else if root["d_model"] != nil {
            try self.init(mambaSSM: fields)
        } else {
            throw .field(file: file.path, field: "model_type", expected: "\"mamba\" or \"mamba2\" (or a mamba_ssm config with d_model and n_layer)")
        }
    }

    /// The fields both transformers formats share, around the mixer `f` describes; missing
    /// fields take transformers' defaults (which tie the embeddings of Mamba, not of Mamba-2,
    /// and differ in the special tokens: `MambaConfig` bos = eos = pad = 0, `Mamba2Config`
    /// bos 0, eos 2, pad 1); a token id given as null means none.
    private init(huggingFace f: Fields, mixer: Mixer, tiedByDefault: Bool, tokens: (bos: Int, eos: Int, pad: Int)) throws(PretrainedError) {
        let activation = try f.string("hidden_act", default: "silu")
        guard activation == "silu" else { throw .field(file: f.file, field: "hidden_act", expected: "\"silu\", got \"\(activation)\"") }
        try self.init(vocabulary: f.positive("vocab_size"), mixer: mixer, layers: f.positive("num_hidden_layers"),
                      normEpsilon: f.positiveReal("layer_norm_epsilon", default: 1e-5),
                      tiedEmbeddings: f.bool("tie_word_embeddings", default: tiedByDefault),
                      bosTokenID: f.tokenID("bos_token_id", missing: tokens.bos), eosTokenID: f.tokenID("eos_token_id", missing: tokens.eos),
                      padTokenID: f.tokenID("pad_token_id", missing: tokens.pad))
        _ = try f.bool("residual_in_fp32", default: true)
    }

    private init(huggingFace f: Fields) throws(PretrainedError) {
        let hidden = try f.positive("hidden_size")
        let expand = try f.positive("expand", default: 2)
        let inner = try f.positive("intermediate_size", default: f.inner(expand, hidden, field: "expand"))
        let rank: Int
        if f.root["time_step_rank"]?.string == "auto" { rank = (hidden + 15) / 16 } else { rank = try f.positive("time_step_rank", default: (hidden + 15) / 16) }
        let (state, conv) = (try f.positive("state_size", default: 16), try f.positive("conv_kernel", default: 4))
        let (convBias, bias) = (try f.bool("use_conv_bias", default: true), try f.bool("use_bias", default: false))
        let mixer: MambaConfiguration
        do {
            mixer = try MambaConfiguration(modelWidth: hidden, state: state, convWidth: conv, innerWidth: inner, dtRank: rank,
                                           convBias: convBias, projectionBias: bias)
        } catch { throw .field(file: f.file, field: "(sizes)", expected: error.description) }
        try self.init(huggingFace: f, mixer: .mamba(mixer), tiedByDefault: true, tokens: (0, 0, 0))
    }

    private init(huggingFaceMamba2 f: Fields) throws(PretrainedError) {
        let hidden = try f.positive("hidden_size")
        let inner = try f.inner(f.positive("expand", default: 2), hidden, field: "expand")
        let headDimension = try f.positive("head_dim", default: 64)
        let heads = try f.positive("num_heads", default: 128)
        guard heads * headDimension == inner else {
            throw .field(file: f.file, field: "num_heads", expected: "num_heads × head_dim = expand × hidden_size = \(inner), got \(heads) × \(headDimension)")
        }
        guard try f.bool("rms_norm", default: true) else { throw .field(file: f.file, field: "rms_norm", expected: "true (LayerNorm blocks are not supported)") }
        guard try !f.bool("norm_before_gate", default: false) else {
            throw .field(file: f.file, field: "norm_before_gate", expected: "false (transformers' Mamba2 gates before its norm)")
        }
        let epsilon = try f.positiveReal("layer_norm_epsilon", default: 1e-5)
        let mixer = try Self.mamba2(f, modelWidth: hidden, inner: inner, headDimension: headDimension, state: f.positive("state_size", default: 128),
                                    conv: f.positive("conv_kernel", default: 4), groups: f.positive("n_groups", default: 8),
                                    chunk: f.positive("chunk_size", default: 256), convBias: f.bool("use_conv_bias", default: true),
                                    bias: f.bool("use_bias", default: false), epsilon: epsilon, limitField: "time_step_limit")
        try self.init(huggingFace: f, mixer: .mamba2(mixer), tiedByDefault: false, tokens: (bos: 0, eos: 2, pad: 1))
    }

    /// A Mamba-2 mixer from a config's sizes; `limitField` names the (min, max) clamp of Δ.
    private static func mamba2(_ f: Fields, modelWidth: Int, inner: Int, headDimension: Int, state: Int, conv: Int, groups: Int, chunk: Int,
                               convBias: Bool, bias: Bool, epsilon: Double, limitField: String) throws(PretrainedError) -> Mamba2Configuration {
        let limit = try f.realPair(limitField, default: (0, .infinity))
        guard limit.0 >= 0, limit.0 <= limit.1, !limit.1.isNaN else {
            throw .field(file: f.file, field: f.prefix + limitField, expected: "(min, max) with 0 ≤ min ≤ max, got (\(limit.0), \(limit.1))")
        }
        do {
            return try Mamba2Configuration(modelWidth: modelWidth, state: state, convWidth: conv, innerWidth: inner, headDimension: headDimension,
                                           groups: groups, chunkLength: chunk, convBias: convBias, projectionBias: bias, normEpsilon: epsilon,
                                           timeStepLimit: limit.0 ... limit.1)
        } catch { throw .field(file: f.file, field: "(sizes)", expected: error.description) }
    }

    private init(mambaSSM f: Fields) throws(PretrainedError) {
        let hidden = try f.positive("d_model")
        guard try f.bool("rms_norm", default: true) else { throw .field(file: f.file, field: "rms_norm", expected: "true (LayerNorm blocks are not supported)") }
        if let mlp = f.present("d_intermediate"), mlp.integer != 0 {
            throw .field(file: f.file, field: "d_intermediate", expected: "0 (blocks with an MLP are not supported)")
        }
        if let attention = f.present("attn_layer_idx"), attention.array?.isEmpty != true {
            throw .field(file: f.file, field: "attn_layer_idx", expected: "[] (attention layers are not supported)")
        }
        let layer = f.root["ssm_cfg"]?["layer"]?.string ?? "Mamba1"
        let ssm = Fields(file: f.file, root: f.root["ssm_cfg"] ?? .object([]), prefix: "ssm_cfg.")
        let expand = try ssm.positive("expand", default: 2)
        _ = try ssm.inner(expand, hidden, field: "expand")
        var vocabulary = try f.positive("vocab_size")
        let multiple = try f.positive("pad_vocab_size_multiple", default: 8)
        if vocabulary % multiple != 0 { vocabulary += multiple - vocabulary % multiple }
        let (convBias, bias) = (try ssm.bool("conv_bias", default: true), try ssm.bool("bias", default: false))
        let mixer: Mixer
        switch layer {
        case "Mamba1":
            let rank: Int
            if ssm.root["dt_rank"]?.string == "auto" { rank = (hidden + 15) / 16 } else { rank = try ssm.positive("dt_rank", default: (hidden + 15) / 16) }
            let (state, conv) = (try ssm.positive("d_state", default: 16), try ssm.positive("d_conv", default: 4))
            do {
                mixer = .mamba(try MambaConfiguration(modelWidth: hidden, state: state, convWidth: conv, innerWidth: expand * hidden, dtRank: rank,
                                                      convBias: convBias, projectionBias: bias))
            } catch { throw .field(file: f.file, field: "ssm_cfg", expected: error.description) }
        case "Mamba2":
            if let partial = ssm.present("d_ssm"), partial.integer != expand * hidden {
                throw .field(file: f.file, field: "ssm_cfg.d_ssm", expected: "null (a partial SSM with a gated MLP is not supported)")
            }
            for (key, supported) in [("D_has_hdim", false), ("rmsnorm", true), ("norm_before_gate", false)] where try ssm.bool(key, default: supported) != supported {
                throw .field(file: f.file, field: "ssm_cfg." + key, expected: "\(supported) (the only form supported)")
            }
            mixer = .mamba2(try Self.mamba2(ssm, modelWidth: hidden, inner: expand * hidden, headDimension: ssm.positive("headdim", default: 64),
                                            state: ssm.positive("d_state", default: 128), conv: ssm.positive("d_conv", default: 4),
                                            groups: ssm.positive("ngroups", default: 1), chunk: ssm.positive("chunk_size", default: 256),
                                            convBias: convBias, bias: bias, epsilon: 1e-5, limitField: "dt_limit"))
        default:
            throw .field(file: f.file, field: "ssm_cfg.layer", expected: "\"Mamba1\" or \"Mamba2\", got \"\(layer)\"")
        }
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

    /// The largest size a configuration may give (2^20): far above any real model's (vocabularies
    /// of 256k, widths of 8k), and low enough that the products of sizes in a parameter's shape
    /// cannot overflow.
    static let largestSize = 1 << 20

    /// `expand × width`, the inner width, held to ``largestSize`` as a given size is.
    func inner(_ expand: Int, _ width: Int, field: String) throws(PretrainedError) -> Int {
        guard expand * width <= Self.largestSize else {
            throw .field(file: file, field: prefix + field, expected: "an inner width (expand × width) ≤ \(Self.largestSize), got \(expand) × \(width)")
        }
        return expand * width
    }

    func positive(_ key: String, default value: Int? = nil) throws(PretrainedError) -> Int {
        guard let v = present(key) else {
            if let value { return value }
            throw .field(file: file, field: prefix + key, expected: "a positive integer (the field is missing)")
        }
        guard let n = v.integer, n >= 1, n <= Self.largestSize else {
            throw .field(file: file, field: prefix + key, expected: "a positive integer ≤ \(Self.largestSize)")
        }
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

    /// A pair of reals, such as a (min, max) limit; an element may be a number (`Infinity` too)
    /// or `{"__float__": "Infinity"}`, as transformers writes infinities.
    func realPair(_ key: String, default value: (Double, Double)) throws(PretrainedError) -> (Double, Double) {
        guard let v = present(key) else { return value }
        func real(_ e: JSONValue) -> Double? {
            if let x = e.double { return x }
            guard let text = e["__float__"]?.string else { return nil }
            return JSONValue.number(text).double
        }
        guard let pair = v.array, pair.count == 2, let low = real(pair[0]), let high = real(pair[1]) else {
            throw .field(file: file, field: prefix + key, expected: "a pair of numbers [min, max]")
        }
        return (low, high)
    }

    /// A token id (a non-negative integer), or nil when absent or null.
    /// A token id; `missing` when the key is absent, nil when it is JSON null.
    func tokenID(_ key: String, missing: Int?) throws(PretrainedError) -> Int? {
        guard root[key] != nil else { return missing }
        guard let v = present(key) else { return nil }
        if let n = v.integer, n >= 0 { return n }
        // Some configs list several end tokens; the first is the one generation stops at by default.
        if let list = v.array, let first = list.first?.integer, first >= 0 { return first }
        throw .field(file: file, field: prefix + key, expected: "a non-negative token id")
    }
}
