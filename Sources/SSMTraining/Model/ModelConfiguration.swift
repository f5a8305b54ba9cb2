import SSMKit

/// The sequence mixer in each residual block.
public enum ModelFamily: String, Sendable, CaseIterable {
    /// ``S4DLayer`` (official s4d.py `S4D`), S4D-Lin initialization.
    case s4d
    /// ``S4Layer`` (the DPLR kernel of s4.py with the same output stage), HiPPO-LegS.
    case s4
    /// `MambaBlock` (official mamba_simple.py `Mamba`).
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

/// The size and shape of a ``SequenceModel``. Legend: H width (d_model) · N state · K classes.
public struct ModelConfiguration: Sendable, Equatable {
    public var family: ModelFamily
    public var layers: Int
    public var width: Int
    /// The SSM state size N (S4/S4D: N, so N/2 complex modes; Mamba: d_state).
    public var state: Int
    public var input: ModelInput
    public var output: ModelOutput
    /// Dropout after each mixer, in training only (official examples: 0 to 0.1).
    public var dropout: Double

    public init(family: ModelFamily, layers: Int, width: Int, state: Int, input: ModelInput, output: ModelOutput,
                dropout: Double = 0) throws(SSMError) {
        for (name, value) in [("layers", layers), ("width", width), ("state", state), ("classes", output.classes)] where value < 1 {
            throw SSMError.value(argument: name, expected: "a positive count, got \(value)")
        }
        if family != .mamba, state % 2 != 0 {
            throw SSMError.value(argument: "state", expected: "an even N for S4/S4D (N/2 complex modes), got \(state)")
        }
        switch input {
        case let .tokens(v) where v < 1: throw SSMError.value(argument: "vocabulary", expected: "a positive count, got \(v)")
        case let .features(f) where f < 1: throw SSMError.value(argument: "features", expected: "a positive count, got \(f)")
        default: break
        }
        guard dropout >= 0, dropout < 1 else { throw SSMError.value(argument: "dropout", expected: "a probability in [0, 1), got \(dropout)") }
        (self.family, self.layers, self.width, self.state, self.input, self.output, self.dropout) =
            (family, layers, width, state, input, output, dropout)
    }

    /// The Mamba block of each layer (official defaults: expand 2, d_conv 4, dt_rank ⌈H/16⌉).
    public var mamba: MambaConfiguration {
        get throws(SSMError) { try MambaConfiguration(modelWidth: width, state: state) }
    }

    /// The configuration as flat string pairs (a checkpoint's metadata).
    public var metadata: [String: String] {
        var m = ["family": family.rawValue, "layers": "\(layers)", "width": "\(width)", "state": "\(state)",
                 "dropout": "\(dropout)", "classes": "\(output.classes)"]
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
        guard let familyText = m["family"], let family = ModelFamily(rawValue: familyText) else {
            throw SSMError.missing(argument: "metadata.family", expected: "one of s4d, s4, mamba")
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
        try self.init(family: family, layers: try integer("layers"), width: try integer("width"), state: try integer("state"),
                      input: input, output: output, dropout: dropout)
    }
}
