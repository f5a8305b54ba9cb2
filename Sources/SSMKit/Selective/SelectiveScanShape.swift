/// Where the selective scan's B (or C) comes from.
public enum SelectiveProjection: Hashable, Sendable {
    /// One (D, N) matrix for every batch and step, as in an LTI system.
    case timeInvariant
    /// A value per batch and step: (B, G, N, L), channel d reading group d / (D / G).
    /// `groups: 1` is the (B, N, L) form of `selective_scan_fn`.
    case inputDependent(groups: Int)
    /// A value per batch and step stored token by token: row b·L + t of a (B·L, stride)
    /// matrix holds group g's N values at columns g·N ..< (g + 1)·N (stride ≥ G·N; other
    /// columns are other data, as in Mamba's x_proj output). The rows read it without a
    /// transpose. Its count is the span from the first value to the last.
    case tokenMajor(groups: Int, stride: Int)
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

    /// The largest state size N: the C row loops keep a row's state on the stack (two copies
    /// of N values), which must stay well within a thread's stack.
    public static let maximumState = 4096

    /// - Throws: ``SSMError`` when an extent is not positive, N exceeds ``maximumState``, G
    ///   does not divide D, or B·D·N·L (or a token-major B·L·stride) overflows `Int`.
    public init(batch: Int, channels: Int, state: Int, length: Int,
                b: SelectiveProjection = .inputDependent(groups: 1),
                c: SelectiveProjection = .inputDependent(groups: 1)) throws(SSMError) {
        for (name, value) in [("batch", batch), ("channels", channels), ("state", state), ("length", length)] where value < 1 {
            throw SSMError.value(argument: name, expected: "a positive extent, got \(value)")
        }
        if state > Self.maximumState {
            throw SSMError.value(argument: "state", expected: "N ≤ \(Self.maximumState), got \(state)")
        }
        for (name, p) in [("B", b), ("C", c)] {
            switch p {
            case .timeInvariant: break
            case let .inputDependent(groups), let .tokenMajor(groups, _):
                if groups < 1 || channels % groups != 0 {
                    throw SSMError.value(argument: name, expected: "a group count that divides D = \(channels), got \(groups)")
                }
            }
            if case let .tokenMajor(groups, stride) = p, stride < groups * state {
                throw SSMError.value(argument: name, expected: "a row stride of at least G·N = \(groups * state), got \(stride)")
            }
            if case let .tokenMajor(_, stride) = p, elementCount([batch, length, stride]) == nil {
                throw SSMError.value(argument: name, expected: "(B·L, stride) rows whose count is representable, got B = \(batch), L = \(length), stride \(stride)")
            }
        }
        // Every count below (u, the state, B and C of B·G·N·L ≤ B·D·N·L) must exist as an Int.
        if elementCount([batch, channels, state, length]) == nil {
            throw SSMError.value(argument: "batch, channels, state, length",
                                 expected: "extents whose product B·D·N·L is representable, got (\(batch), \(channels), \(state), \(length))")
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
        case let .tokenMajor(groups, stride): (batch * length - 1) * stride + groups * state
        }
    }

    /// The shape of B or C in `projection`'s layout, for messages.
    public func describe(_ projection: SelectiveProjection) -> String {
        switch projection {
        case .timeInvariant: "(D, N) = (\(channels), \(state))"
        case let .inputDependent(groups): "(B, G, N, L) = (\(batch), \(groups), \(state), \(length))"
        case let .tokenMajor(groups, stride): "(B·L, stride) = (\(batch * length), \(stride)) with G·N = \(groups * state) columns read"
        }
    }

    /// The group of channel d in `projection` (0 for a time-invariant one).
    @inlinable
    func group(_ d: Int, _ projection: SelectiveProjection) -> Int {
        switch projection {
        case .timeInvariant: 0
        case let .inputDependent(groups), let .tokenMajor(groups, _): d / (channels / groups)
        }
    }
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
    /// Throws for an input of the wrong count or with a NaN or infinity. With
    /// `sequences: false` the values of u, delta and z are left to the C row loops, which check
    /// their slices (vectorized, in parallel, while the data is in cache) and report them.
    func check<T: FFTScalar>(_ x: SelectiveScanInputs<T>, sequences: Bool = true) throws(SSMError) {
        let sequence = "(B, D, L) = (\(batch), \(channels), \(length))"
        let perChannel = "(D) = (\(channels))"
        try checkValues(x.u, "u", sequenceCount, sequence, finite: sequences)
        try checkValues(x.delta, "delta", sequenceCount, sequence, finite: sequences)
        try checkValues(x.a, "A", channels * state, "(D, N) = (\(channels), \(state))")
        try checkValues(x.b, "B", count(b), describe(b))
        try checkValues(x.c, "C", count(c), describe(c))
        if let d = x.d { try checkValues(d, "D", channels, perChannel) }
        if let z = x.z { try checkValues(z, "z", sequenceCount, sequence, finite: sequences) }
        if let bias = x.deltaBias { try checkValues(bias, "delta_bias", channels, perChannel) }
        if let x0 = x.initialState {
            try checkValues(x0, "initial_state", stateCount, "(B, D, N) = (\(batch), \(channels), \(state))")
        }
    }
}
