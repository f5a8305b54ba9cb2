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
    /// - Throws: ``SSMError`` for a non-positive size.
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

/// The parameters of a Mamba block under their official names (`A_log`, `in_proj.weight`, …),
/// each flat in the official row-major shape (see ``MambaConfiguration/parameterShapes``).
/// The same type holds gradients.
public struct MambaParameters<T: FFTScalar>: Sendable {
    public var values: [String: [T]]

    public init(values: [String: [T]]) { self.values = values }

    public subscript(_ name: String) -> [T] {
        get { values[name] ?? [] }
        set { values[name] = newValue }
    }

    /// Zeros of every shape, for accumulating gradients.
    public init(zerosFor configuration: MambaConfiguration) {
        values = Dictionary(uniqueKeysWithValues: configuration.parameterShapes.map {
            ($0.name, [T](repeating: 0, count: $0.shape.reduce(1, *)))
        })
    }

    /// The official initialization, from a seed: linear layers and conv1d uniform in
    /// ±1/√fan_in (PyTorch's default), dt_proj.weight uniform in ±R^{-1/2}, dt log-uniform in
    /// [0.001, 0.1] (floored at 1e-4) stored as dt_proj.bias = softplus⁻¹(dt), A_log = log(1 … N),
    /// D = 1.
    public init(configuration c: MambaConfiguration, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        func uniform(_ count: Int, _ bound: Double) -> [T] {
            (0 ..< count).map { _ in T(Double.random(in: -bound ..< bound, using: &rng)) }
        }
        let (M, E, N, K, R) = (c.modelWidth, c.innerWidth, c.state, c.convWidth, c.dtRank)
        var v: [String: [T]] = [:]
        v["in_proj.weight"] = uniform(2 * E * M, 1 / Double(M).squareRoot())
        if c.projectionBias { v["in_proj.bias"] = uniform(2 * E, 1 / Double(M).squareRoot()) }
        v["conv1d.weight"] = uniform(E * K, 1 / Double(K).squareRoot())
        if c.convBias { v["conv1d.bias"] = uniform(E, 1 / Double(K).squareRoot()) }
        v["x_proj.weight"] = uniform((R + 2 * N) * E, 1 / Double(E).squareRoot())
        v["dt_proj.weight"] = uniform(E * R, 1 / Double(R).squareRoot())
        v["dt_proj.bias"] = (0 ..< E).map { _ in
            let dt = max(1e-4, Double.exp(Double.random(in: Double.log(0.001) ..< Double.log(0.1), using: &rng)))
            return T(dt + Double.log(-Double.expMinusOne(-dt)))  // softplus⁻¹(dt)
        }
        v["A_log"] = (0 ..< E * N).map { T(Double.log(Double($0 % N + 1))) }
        v["D"] = [T](repeating: 1, count: E)
        v["out_proj.weight"] = uniform(M * E, 1 / Double(E).squareRoot())
        if c.projectionBias { v["out_proj.bias"] = uniform(M, 1 / Double(E).squareRoot()) }
        values = v
    }

    /// Throws unless every parameter of `configuration` is present with its count and finite,
    /// and nothing else is.
    public func check(_ configuration: MambaConfiguration) throws(SSMError) {
        let expected = configuration.parameterShapes
        for (name, shape) in expected {
            guard let v = values[name] else {
                throw SSMError.missing(argument: name, expected: "a tensor of shape \(shape)")
            }
            try checkValues(v, name, shape.reduce(1, *), "\(shape)")
        }
        if let extra = values.keys.sorted().first(where: { name in !expected.contains { $0.name == name } }) {
            throw SSMError.unexpected(argument: extra, expected: "this configuration has \(expected.map(\.name).joined(separator: ", "))")
        }
    }
}
