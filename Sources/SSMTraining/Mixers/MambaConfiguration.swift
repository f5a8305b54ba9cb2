import SSMKit

/// The sizes of a Mamba block (official `Mamba`, mamba_ssm/modules/mamba_simple.py).
/// Legend: M model width (d_model) · E inner width (d_inner) · N state · K conv width · R dt rank.
public struct MambaConfiguration: Hashable, Sendable {
    public let modelWidth: Int
    public let innerWidth: Int
    public let state: Int
    public let convWidth: Int
    public let dtRank: Int
    /// conv1d has a bias (official `conv_bias=True`).
    public let convBias: Bool
    /// in_proj and out_proj have biases (official `bias=False`).
    public let projectionBias: Bool

    /// The official defaults: N = 16, K = 4, E = 2M, R = ⌈M / 16⌉.
    /// - Throws: `SSMError` for a non-positive size.
    public init(modelWidth: Int, state: Int = 16, convWidth: Int = 4, innerWidth: Int? = nil, dtRank: Int? = nil,
                convBias: Bool = true, projectionBias: Bool = false) throws(SSMError) {
        let innerWidth = innerWidth ?? 2 * modelWidth
        let dtRank = dtRank ?? (modelWidth + 15) / 16
        for (name, value) in [("d_model", modelWidth), ("d_state", state), ("d_conv", convWidth),
                              ("d_inner", innerWidth), ("dt_rank", dtRank)] where value < 1 {
            throw SSMError.value(argument: name, expected: "a positive size, got \(value)")
        }
        self.modelWidth = modelWidth
        self.innerWidth = innerWidth
        self.state = state
        self.convWidth = convWidth
        self.dtRank = dtRank
        self.convBias = convBias
        self.projectionBias = projectionBias
    }

    /// Each parameter's official name and shape, in state_dict order; optional ones only
    /// when this configuration has them.
    public var parameterShapes: [(name: String, shape: [Int])] {
        let (M, E, N, K, R) = (modelWidth, innerWidth, state, convWidth, dtRank)
        var list: [(String, [Int])] = [("in_proj.weight", [2 * E, M])]
        if projectionBias { list.append(("in_proj.bias", [2 * E])) }
        list.append(("conv1d.weight", [E, 1, K]))
        if convBias { list.append(("conv1d.bias", [E])) }
        list += [("x_proj.weight", [R + 2 * N, E]), ("dt_proj.weight", [E, R]), ("dt_proj.bias", [E]),
                 ("A_log", [E, N]), ("D", [E]), ("out_proj.weight", [M, E])]
        if projectionBias { list.append(("out_proj.bias", [M])) }
        return list
    }
}
