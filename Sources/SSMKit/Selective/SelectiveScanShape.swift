/// Where the selective scan's B (or C) comes from.
public enum SelectiveProjection: Hashable, Sendable {
    /// One (D, N) matrix for every batch and step, as in an LTI system.
    case timeInvariant
    /// A value per batch and step: (B, G, N, L), channel d reading group d / (D / G).
    /// `groups: 1` is the (B, N, L) form that Mamba uses.
    case inputDependent(groups: Int)
}

/// The extents of one selective scan (legend: B batch · D channels · N state · L length ·
/// G groups), with the layouts of `selective_scan_fn`: u, delta, z and out (B, D, L),
/// A (D, N), B and C per ``SelectiveProjection``, D and delta_bias (D), states (B, D, N).
public struct SelectiveScanShape: Hashable, Sendable {
    public let batch: Int
    public let channels: Int
    public let state: Int
    public let length: Int
    public let b: SelectiveProjection
    public let c: SelectiveProjection

    /// - Throws: ``SSMError`` when an extent is not positive or G does not divide D.
    public init(batch: Int, channels: Int, state: Int, length: Int,
                b: SelectiveProjection = .inputDependent(groups: 1),
                c: SelectiveProjection = .inputDependent(groups: 1)) throws(SSMError) {
        for (name, value) in [("batch", batch), ("channels", channels), ("state", state), ("length", length)] where value < 1 {
            throw SSMError.value(argument: name, expected: "a positive extent, got \(value)")
        }
        for (name, p) in [("B", b), ("C", c)] {
            if case let .inputDependent(groups) = p, groups < 1 || channels % groups != 0 {
                throw SSMError.value(argument: name, expected: "a group count that divides D = \(channels), got \(groups)")
            }
        }
        self.batch = batch
        self.channels = channels
        self.state = state
        self.length = length
        self.b = b
        self.c = c
    }

    /// B·D·L: the count of u, delta, z and out.
    public var sequenceCount: Int { batch * channels * length }
    /// B·D·N: the count of a state.
    public var stateCount: Int { batch * channels * state }

    /// The count of B or C in `projection`'s layout.
    public func count(_ projection: SelectiveProjection) -> Int {
        switch projection {
        case .timeInvariant: channels * state
        case let .inputDependent(groups): batch * groups * state * length
        }
    }

    /// The shape of B or C in `projection`'s layout, for messages.
    public func describe(_ projection: SelectiveProjection) -> String {
        switch projection {
        case .timeInvariant: "(D, N) = (\(channels), \(state))"
        case let .inputDependent(groups): "(B, G, N, L) = (\(batch), \(groups), \(state), \(length))"
        }
    }

    /// The group of channel d in `projection` (0 for a time-invariant one).
    @inlinable
    func group(_ d: Int, _ projection: SelectiveProjection) -> Int {
        if case let .inputDependent(groups) = projection { return d / (channels / groups) }
        return 0
    }

    var groupsOfB: Int { if case let .inputDependent(g) = b { g } else { 0 } }
    var groupsOfC: Int { if case let .inputDependent(g) = c { g } else { 0 } }
}

/// The inputs of a selective scan, in ``SelectiveScanShape``'s layouts. Optional inputs are
/// absent when nil: D (skip), z (gate y ⊙ silu(z)), delta_bias, initial_state (zero).
public struct SelectiveScanInputs<T: Sendable>: Sendable {
    public var u: [T]
    public var delta: [T]
    public var a: [T]
    public var b: [T]
    public var c: [T]
    public var d: [T]?
    public var z: [T]?
    public var deltaBias: [T]?
    public var initialState: [T]?

    public init(u: [T], delta: [T], a: [T], b: [T], c: [T], d: [T]? = nil, z: [T]? = nil,
                deltaBias: [T]? = nil, initialState: [T]? = nil) {
        self.u = u
        self.delta = delta
        self.a = a
        self.b = b
        self.c = c
        self.d = d
        self.z = z
        self.deltaBias = deltaBias
        self.initialState = initialState
    }
}

/// The gradients of Σ d_out ⊙ out with respect to each input, in the input's layout; nil
/// where the input was absent. No gradient flows from the last state (as in the official code).
public struct SelectiveScanGradients<T: Sendable>: Sendable {
    public var u: [T]
    public var delta: [T]
    public var a: [T]
    public var b: [T]
    public var c: [T]
    public var d: [T]?
    public var z: [T]?
    public var deltaBias: [T]?
    public var initialState: [T]?
}

extension SelectiveScanShape {
    /// Throws for an input of the wrong count or with a NaN or infinity.
    func check<T: FFTScalar>(_ x: SelectiveScanInputs<T>) throws(SSMError) {
        let seq = "(B, D, L) = (\(batch), \(channels), \(length))"
        let list: [(String, [T]?, Int, String)] = [
            ("u", x.u, sequenceCount, seq), ("delta", x.delta, sequenceCount, seq),
            ("A", x.a, channels * state, "(D, N) = (\(channels), \(state))"),
            ("B", x.b, count(b), describe(b)), ("C", x.c, count(c), describe(c)),
            ("D", x.d, channels, "(D) = (\(channels))"), ("z", x.z, sequenceCount, seq),
            ("delta_bias", x.deltaBias, channels, "(D) = (\(channels))"),
            ("initial_state", x.initialState, stateCount, "(B, D, N) = (\(batch), \(channels), \(state))"),
        ]
        for (name, values, count, expected) in list {
            guard let values else { continue }
            try checkValues(values, name, count, expected)
        }
    }
}

/// Throws unless `values` holds `count` finite numbers.
func checkValues<T: FFTScalar>(_ values: [T], _ name: String, _ count: Int, _ expected: String) throws(SSMError) {
    if values.count != count { throw SSMError.shape(argument: name, expected: expected, actual: [values.count]) }
    if let i = values.firstIndex(where: { !$0.isFinite }) {
        throw SSMError.value(argument: name, expected: "finite values (element \(i) is \(values[i]))")
    }
}
