import SSMKit

/// The sizes of a Mamba-2 block (official `Mamba2`, mamba_ssm/modules/mamba2.py; transformers'
/// `Mamba2Mixer`). Legend: M model width · E inner width (= H·P) · H heads · P head dimension ·
/// G groups · N state · K conv width · Q chunk length. The conv runs over xBC, E + 2GN channels;
/// in_proj writes [z (E), xBC (E + 2GN), dt (H)] per token.
public struct Mamba2Configuration: Hashable, Sendable {
    public let modelWidth: Int
    public let heads: Int
    public let headDimension: Int
    public let groups: Int
    public let state: Int
    public let convWidth: Int
    /// Tokens per chunk of the SSD scan (official `chunk_size`).
    public let chunkLength: Int
    /// conv1d has a bias (official `conv_bias=True`).
    public let convBias: Bool
    /// in_proj and out_proj have biases (official `bias=False`).
    public let projectionBias: Bool
    /// The gated RMSNorm's ε (official 1e-5).
    public let normEpsilon: Double
    /// The clamp of dt′ (official `dt_limit`, transformers' `time_step_limit`; default none).
    public let timeStepLimit: ClosedRange<Double>

    /// E = H·P.
    public var innerWidth: Int { heads * headDimension }
    /// E + 2GN: the channels of the conv (x, B and C).
    public var convChannels: Int { innerWidth + 2 * groups * state }
    /// 2E + 2GN + H: in_proj's outputs.
    public var projectionWidth: Int { 2 * innerWidth + 2 * groups * state + heads }

    /// The official defaults: N = 128, K = 4, E = 2M, P = 64 (so H = E/64), G = 1, Q = 256. A
    /// width whose E is not a multiple of 64 needs `headDimension`.
    /// - Throws: `SSMError` for a non-positive size, P not dividing E, G not dividing H, or a
    ///   bad limit.
    public init(modelWidth: Int, state: Int = 128, convWidth: Int = 4, innerWidth: Int? = nil, headDimension: Int = 64, groups: Int = 1,
                chunkLength: Int = 256, convBias: Bool = true, projectionBias: Bool = false, normEpsilon: Double = 1e-5,
                timeStepLimit: ClosedRange<Double> = 0 ... .infinity) throws(SSMError) {
        let inner = innerWidth ?? 2 * modelWidth
        for (name, value) in [("d_model", modelWidth), ("d_state", state), ("d_conv", convWidth), ("d_inner", inner),
                              ("headdim", headDimension), ("ngroups", groups), ("chunk_size", chunkLength)] where value < 1 {
            throw SSMError.value(argument: name, expected: "a positive size, got \(value)")
        }
        guard inner % headDimension == 0 else {
            throw SSMError.value(argument: "headdim", expected: "a head dimension that divides d_inner = \(inner), got \(headDimension)")
        }
        let heads = inner / headDimension
        guard heads % groups == 0 else {
            throw SSMError.value(argument: "ngroups", expected: "a group count that divides the \(heads) heads, got \(groups)")
        }
        guard normEpsilon > 0, normEpsilon.isFinite else { throw SSMError.value(argument: "norm_epsilon", expected: "a positive ε, got \(normEpsilon)") }
        _ = try SSDTimeStep(softplus: true, minimum: timeStepLimit.lowerBound, maximum: timeStepLimit.upperBound)
        (self.modelWidth, self.heads, self.headDimension, self.groups, self.state) = (modelWidth, heads, headDimension, groups, state)
        (self.convWidth, self.chunkLength, self.convBias, self.projectionBias) = (convWidth, chunkLength, convBias, projectionBias)
        (self.normEpsilon, self.timeStepLimit) = (normEpsilon, timeStepLimit)
    }

    /// The head dimension of a block whose sizes leave it open: the largest P ≤ min(64, E/8)
    /// (at least 1) that divides the inner width E, so that there are about 8 heads or more.
    public static func defaultHeadDimension(innerWidth E: Int) -> Int {
        var p = Swift.min(64, Swift.max(1, E / 8))
        while p > 1, E % p != 0 { p -= 1 }
        return p
    }

    /// How dt becomes dt′: softplus(dt + dt_bias), clamped to ``timeStepLimit``.
    public var timeStep: SSDTimeStep {
        // Checked in init.
        try! SSDTimeStep(softplus: true, minimum: timeStepLimit.lowerBound, maximum: timeStepLimit.upperBound)
    }

    /// Each parameter's official name and shape in state_dict order (the module's own
    /// parameters first, then its children's); optional ones only when configured.
    public var parameterShapes: [(name: String, shape: [Int])] {
        let (M, E, H, K) = (modelWidth, innerWidth, heads, convWidth)
        var list: [(String, [Int])] = [("dt_bias", [H]), ("A_log", [H]), ("D", [H]), ("in_proj.weight", [projectionWidth, M])]
        if projectionBias { list.append(("in_proj.bias", [projectionWidth])) }
        list.append(("conv1d.weight", [convChannels, 1, K]))
        if convBias { list.append(("conv1d.bias", [convChannels])) }
        list += [("norm.weight", [E]), ("out_proj.weight", [M, E])]
        if projectionBias { list.append(("out_proj.bias", [M])) }
        return list
    }
}
