import SSMKit

/// The sequence mixers SSMKit ships, by name: what a ``ModelConfiguration`` (and so a
/// checkpoint's metadata, or `ssm train --model`) can name. Each makes its ``SequenceMixer``;
/// everything else about a mixer lives in its own type.
public enum ModelFamily: String, Sendable, CaseIterable {
    /// ``S4DMixer`` (official s4d.py `S4D`), S4D-Lin initialization.
    case s4d
    /// ``S4Mixer`` (the DPLR kernel of s4.py with the same output stage), HiPPO-LegS.
    case s4
    /// ``MambaMixer`` (official mamba_simple.py `Mamba`).
    case mamba
    /// ``Mamba2Mixer`` (official mamba2.py `Mamba2`): E = 2H, heads of dimension min(64, E/8),
    /// one group, chunks of 256.
    case mamba2

    /// The mixer of one block of width H and state N.
    public func makeMixer<T: SSMScalar>(_: T.Type = T.self, width H: Int, state N: Int, threads: Int,
                                                effort: FFTPlannerEffort) throws(SSMError) -> any SequenceMixer<T> {
        switch self {
        case .s4d: try S4DMixer<T>(width: H, state: N, threads: threads, effort: effort)
        case .s4: try S4Mixer<T>(width: H, state: N, threads: threads, effort: effort)
        case .mamba: try MambaMixer<T>(width: H, state: N, threads: threads)
        case .mamba2: try Mamba2Mixer<T>(width: H, state: N, threads: threads)
        }
    }

    /// The backbone of a model whose blocks all use this mixer (the official model around it).
    public var backbone: ModelBackbone {
        isSelective ? .mamba : .s4
    }

    /// Mamba and Mamba-2: input-dependent (selective) state spaces with a Mamba backbone.
    public var isSelective: Bool { self == .mamba || self == .mamba2 }

    /// Whether the mixer's convolution (training) mode and its step mode are different
    /// algorithms, so that comparing them checks something (S4, S4D: FFT convolution vs
    /// recurrence; Mamba-2: chunked matrix products vs recurrence; Mamba's scan already is its
    /// recurrence).
    public var hasDistinctRecurrentMode: Bool { self != .mamba }
}

/// The model around the mixers: names, norms and heads of the official model it follows.
public enum ModelBackbone: String, Sendable, CaseIterable {
    /// The official S4 example (`example.py`, `prenorm=True`): `encoder`, `s4_layers.{i}`,
    /// LayerNorm `norms.{i}`, `decoder` with bias; no final norm; an embedding N(0, 1).
    case s4
    /// `MambaLMHeadModel` (`rms_norm=True`, untied): `backbone.embedding` (or
    /// `backbone.encoder` for features), `backbone.layers.{i}.norm` (RMSNorm) and
    /// `.mixer`, `backbone.norm_f`, `lm_head` without bias; an embedding N(0, 0.02²); output
    /// projections rescaled by 1/√layers (`rescale_prenorm_residual`). Hybrid stacks use it.
    case mamba
}

/// What the model reads: token ids or real feature vectors per position.
public enum ModelInput: Sendable, Equatable {
    /// Token ids in 0 ..< vocabulary, through an embedding.
    case tokens(vocabulary: Int)
    /// F real features per position, through a linear encoder.
    case features(Int)
}

/// What the model predicts.
public enum ModelOutput: Sendable, Equatable {
    /// `classes` outputs at every position.
    case perToken(classes: Int)
    /// `classes` outputs per sequence, from the pooled last hidden states.
    case pooled(Pooling, classes: Int)

    public var classes: Int {
        switch self {
        case let .perToken(k), let .pooled(_, k): k
        }
    }
}

/// The size and shape of a ``SequenceModel`` built from ``ModelFamily`` mixers: one family per
/// block (all the same, or a hybrid stack). Legend: H width (d_model) · N state · K classes.
public struct ModelConfiguration: Sendable, Equatable {
    /// The mixer of each block, first to last.
    public var mixers: [ModelFamily]
    public var width: Int
    /// The SSM state size N (S4/S4D: N, so N/2 complex modes; Mamba: d_state).
    public var state: Int
    public var input: ModelInput
    public var output: ModelOutput
    /// Dropout after each mixer, in training only (official examples: 0 to 0.1).
    public var dropout: Double

    /// A model of `layers` blocks of one family.
    public init(family: ModelFamily, layers: Int, width: Int, state: Int, input: ModelInput, output: ModelOutput,
                dropout: Double = 0) throws(SSMError) {
        guard layers >= 1 else { throw SSMError.value(argument: "layers", expected: "a positive count, got \(layers)") }
        try self.init(mixers: [ModelFamily](repeating: family, count: layers), width: width, state: state, input: input, output: output,
                      dropout: dropout)
    }

    /// A model of one block per entry of `mixers` (a hybrid stack when they differ).
    public init(mixers: [ModelFamily], width: Int, state: Int, input: ModelInput, output: ModelOutput,
                dropout: Double = 0) throws(SSMError) {
        for (name, value) in [("layers", mixers.count), ("width", width), ("state", state), ("classes", output.classes)] where value < 1 {
            throw SSMError.value(argument: name, expected: "a positive count, got \(value)")
        }
        if mixers.contains(where: { !$0.isSelective }), state % 2 != 0 {
            throw SSMError.value(argument: "state", expected: "an even N for S4/S4D (N/2 complex modes), got \(state)")
        }
        switch input {
        case let .tokens(v) where v < 1: throw SSMError.value(argument: "vocabulary", expected: "a positive count, got \(v)")
        case let .features(f) where f < 1: throw SSMError.value(argument: "features", expected: "a positive count, got \(f)")
        default: break
        }
        guard dropout >= 0, dropout < 1 else { throw SSMError.value(argument: "dropout", expected: "a probability in [0, 1), got \(dropout)") }
        (self.mixers, self.width, self.state, self.input, self.output, self.dropout) = (mixers, width, state, input, output, dropout)
    }

    /// The number of blocks.
    public var layers: Int { mixers.count }

    /// The family of every block, or nil for a hybrid stack.
    public var family: ModelFamily? { mixers.allSatisfy { $0 == mixers[0] } ? mixers[0] : nil }

    /// The family, or the blocks' families joined by commas for a hybrid stack (`s4d,mamba`).
    public var mixerDescription: String { family?.rawValue ?? mixers.map(\.rawValue).joined(separator: ",") }

    /// The official model of a one-family stack; hybrid stacks use Mamba's.
    public var backbone: ModelBackbone { family?.backbone ?? .mamba }

    /// The configuration as flat string pairs (a checkpoint's metadata).
    public var metadata: [String: String] {
        var m = ["layers": "\(layers)", "width": "\(width)", "state": "\(state)", "dropout": "\(dropout)", "classes": "\(output.classes)"]
        if let family { m["family"] = family.rawValue } else { m["mixers"] = mixerDescription }
        switch input {
        case let .tokens(v): m["vocabulary"] = "\(v)"
        case let .features(f): m["features"] = "\(f)"
        }
        switch output {
        case .perToken: m["output"] = "per-token"
        case let .pooled(pooling, _): m["output"] = "pooled-\(pooling.rawValue)"
        }
        return m
    }

    /// Reads ``metadata`` back.
    /// - Throws: `SSMError` naming the first missing or malformed key.
    public init(metadata m: [String: String]) throws(SSMError) {
        func integer(_ key: String) throws(SSMError) -> Int {
            guard let text = m[key], let v = Int(text) else { throw SSMError.missing(argument: "metadata.\(key)", expected: "an integer") }
            return v
        }
        let names = ModelFamily.allCases.map(\.rawValue).joined(separator: ", ")
        let mixers: [ModelFamily]
        if let list = m["mixers"] {
            var parsed: [ModelFamily] = []
            for name in list.split(separator: ",") {
                guard let f = ModelFamily(rawValue: String(name)) else {
                    throw SSMError.value(argument: "metadata.mixers", expected: "families among \(names), got \(name)")
                }
                parsed.append(f)
            }
            mixers = parsed
        } else {
            guard let familyText = m["family"], let family = ModelFamily(rawValue: familyText) else {
                throw SSMError.missing(argument: "metadata.family", expected: "one of \(names)")
            }
            let layers = try integer("layers")
            guard layers >= 1 else { throw SSMError.value(argument: "metadata.layers", expected: "a positive count, got \(layers)") }
            mixers = [ModelFamily](repeating: family, count: layers)
        }
        let input: ModelInput
        if m["vocabulary"] != nil { input = .tokens(vocabulary: try integer("vocabulary")) } else { input = .features(try integer("features")) }
        let classes = try integer("classes")
        let output: ModelOutput
        switch m["output"] {
        case "per-token": output = .perToken(classes: classes)
        case let text? where text.hasPrefix("pooled-"):
            guard let pooling = Pooling(rawValue: String(text.dropFirst("pooled-".count))) else {
                throw SSMError.value(argument: "metadata.output", expected: "pooled-mean or pooled-last, got \(text)")
            }
            output = .pooled(pooling, classes: classes)
        default: throw SSMError.missing(argument: "metadata.output", expected: "per-token, pooled-mean or pooled-last")
        }
        guard let dropoutText = m["dropout"], let dropout = Double(dropoutText) else {
            throw SSMError.missing(argument: "metadata.dropout", expected: "a number")
        }
        try self.init(mixers: mixers, width: try integer("width"), state: try integer("state"), input: input, output: output, dropout: dropout)
    }
}
