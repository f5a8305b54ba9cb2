import SSMKit

/// How a block's hidden states sit in memory. Legend: B batch · L length · H width.
public enum SequenceLayout: Sendable, Equatable {
    /// (B, H, L): each channel's sequence contiguous, the layout of FFT convolutions.
    case channelMajor
    /// (B, L, H): each token's features contiguous, the layout of projections.
    case tokenMajor
}

/// The sequence mixer of a residual block: the part of a model that moves information along
/// the sequence (S4D, S4, Mamba, or a mixer of your own). Legend: B batch · L length · H width.
///
/// A mixer declares its parameters once (``parameterDeclarations``); the model lays them out
/// in its flat buffer and hands the mixer views of its slice. A mixer keeps whatever it plans
/// once (FFT plans, kernels' scratch) and reuses it; what one pass keeps for its backward pass
/// lives in an ``Activations`` object that the model makes once per (B, L) and reuses.
///
/// The contract, for every conformance:
/// - ``forward(_:parameters:activations:into:)`` reads u (B·L·H in ``layout``) and writes y of
///   the same shape and layout, keeping what backward needs in `activations`;
/// - ``backward(_:input:parameters:activations:dInput:gradients:)`` **adds** the gradients of
///   Σ dY ⊙ y into `dInput` and `gradients` (it never overwrites them);
/// - ``forward(_:parameters:activations:adding:into:)`` may add the block's residual as it
///   writes y (returning true), with the bits of a separate addition; by default it does not;
/// - ``forwardRecurrent(_:parameters:batch:length:into:)`` computes the same y one token at a
///   time from a state (step mode), and agrees with forward to rounding;
/// - one object runs one pass at a time; concurrent passes need one mixer each.
public protocol SequenceMixer<Scalar>: AnyObject, Sendable {
    associatedtype Scalar: SSMScalar
    /// What a forward pass keeps for backward, sized for one (B, L).
    associatedtype Activations: AnyObject
    /// The recurrent state of B sequences.
    associatedtype State

    /// H, the width of the hidden states it reads and writes.
    var width: Int { get }
    /// The layout its passes read and write.
    var layout: SequenceLayout { get }
    /// Its parameters under their official names (relative to the block's prefix), in order.
    var parameterDeclarations: [ParameterDeclaration] { get }

    /// Buffers for one pass over (B, L) = (`batch`, `length`).
    func makeActivations(batch: Int, length: Int) throws(SSMError) -> Activations

    /// y from u, both (B, L, H) values in ``layout``.
    func forward(_ u: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>, activations: Activations,
                 into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError)

    /// The block's output with its residual connection, y = residual + forward(u), where the
    /// mixer's last pass can add `residual` (the shape of y, not overlapping it) as it writes y,
    /// with the bits of a separate addition: returns true. The default runs
    /// ``forward(_:parameters:activations:into:)`` and returns false, leaving the addition to
    /// the caller.
    func forward(_ u: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>, activations: Activations,
                 adding residual: UnsafePointer<Scalar>, into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError) -> Bool

    /// Adds the gradients of Σ dY ⊙ y into dInput (the shape of u) and `gradients`; u is the
    /// input of the forward pass that filled `activations`.
    func backward(_ dY: UnsafeBufferPointer<Scalar>, input u: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>,
                  activations: Activations,
                  dInput: UnsafeMutableBufferPointer<Scalar>, gradients: GradientView<Scalar>) throws(SSMError)

    /// The zero state of `batch` sequences for step mode. `length` is the length the mixer's
    /// convolution mode stands for (S4's C̃ is attuned to it); other mixers ignore it.
    func makeState(batch: Int, length: Int, parameters: ParameterView<Scalar>) throws(SSMError) -> State

    /// One token per sequence: u (B, H) → y (B, H), advancing `state`.
    func step(_ state: inout State, _ u: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>,
              into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError)

    /// Step mode over whole sequences from the zero state: the same y as forward, in
    /// ``layout``. The default steps token by token; mixers with a faster recurrent path
    /// override it.
    func forwardRecurrent(_ u: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>, batch: Int, length: Int,
                          into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError)
}

extension SequenceMixer {
    public func forward(_ u: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>, activations: Activations,
                        adding residual: UnsafePointer<Scalar>, into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError) -> Bool {
        try forward(u, parameters: parameters, activations: activations, into: y)
        return false
    }

    public func forwardRecurrent(_ u: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>, batch B: Int, length L: Int,
                                 into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError) {
        let H = width
        var state = try makeState(batch: B, length: L, parameters: parameters)
        var ut = [Scalar](repeating: 0, count: B * H), yt = ut
        for t in 0 ..< L {
            for b in 0 ..< B {
                for h in 0 ..< H { ut[b * H + h] = u[index(b, h, t, B: B, H: H, L: L)] }
            }
            try ut.withUnsafeBufferPointer { (u: UnsafeBufferPointer<Scalar>) throws(SSMError) in
                try yt.withUnsafeMutableBufferPointer { (y: inout UnsafeMutableBufferPointer<Scalar>) throws(SSMError) in
                    try step(&state, u, parameters: parameters, into: y)
                }
            }
            for b in 0 ..< B {
                for h in 0 ..< H { y[index(b, h, t, B: B, H: H, L: L)] = yt[b * H + h] }
            }
        }
    }

    /// The flat index of (b, h, t) in ``layout``.
    @inlinable
    func index(_ b: Int, _ h: Int, _ t: Int, B: Int, H: Int, L: Int) -> Int {
        layout == .channelMajor ? (b * H + h) * L + t : (b * L + t) * H + h
    }

    /// Throws unless `count` values are (B, L, H) for this mixer.
    func checkSequence(_ count: Int, _ name: String, batch B: Int, length L: Int) throws(SSMError) {
        guard count == B * L * width else {
            let shape = layout == .channelMajor ? "(B, H, L) = (\(B), \(width), \(L))" : "(B, L, H) = (\(B), \(L), \(width))"
            throw SSMError.shape(argument: name, expected: shape, actual: [count])
        }
    }
}

// MARK: One mixer on its own

extension SequenceMixer {
    /// A parameter set of this mixer's declarations alone (names relative to the mixer), with
    /// the values `values` gives each.
    /// - Throws: `SSMError` naming a parameter whose value count does not fit its shape.
    public func parameters(_ values: (ParameterDeclaration) throws(SSMError) -> [Scalar]) throws(SSMError) -> ParameterSet<Scalar> {
        var set = ParameterSet<Scalar>()
        for d in parameterDeclarations {
            let v = try values(d)
            guard v.count == d.count else { throw SSMError.shape(argument: d.name, expected: "\(d.shape)", actual: [v.count]) }
            set.add(d.name, shape: d.shape, group: d.group, values: v)
        }
        return set
    }

    /// This mixer's declared initialization, drawn from a generator seeded with `seed`.
    public func initialParameters(seed: UInt64) throws(SSMError) -> ParameterSet<Scalar> {
        var rng = SplitMix64(seed: seed)
        return try parameters { (d: ParameterDeclaration) throws(SSMError) in try d.initialization.values(count: d.count, rng: &rng).map { Scalar($0) } }
    }

    private func checkLayout(_ p: ParameterSet<Scalar>) throws(SSMError) {
        guard p.names == parameterDeclarations.map(\.name) else {
            throw SSMError.value(argument: "parameters", expected: "this mixer's parameters \(parameterDeclarations.map(\.name)) in order")
        }
    }

    /// Calls `body` with a view of `p`, a set of this mixer's declarations.
    func withParameterView<R>(_ p: ParameterSet<Scalar>, _ body: (ParameterView<Scalar>) throws(SSMError) -> R) throws(SSMError) -> R {
        try checkLayout(p)
        return try p.storage.withUnsafeBufferPointer { (pb: UnsafeBufferPointer<Scalar>) throws(SSMError) in
            try body(ParameterView(base: pb.baseAddress!, layout: ParameterLayout(parameterDeclarations)))
        }
    }

    /// Step mode on arrays from the zero state: the y of ``forward(_:batch:length:parameters:)``
    /// one token at a time.
    public func forwardRecurrent(_ u: [Scalar], batch B: Int, length L: Int, parameters p: ParameterSet<Scalar>) throws(SSMError) -> [Scalar] {
        try checkSequence(u.count, "u", batch: B, length: L)
        var y = [Scalar](repeating: 0, count: u.count)
        try withParameterView(p) { (view: ParameterView<Scalar>) throws(SSMError) in
            try u.withUnsafeBufferPointer { (u: UnsafeBufferPointer<Scalar>) throws(SSMError) in
                try y.withUnsafeMutableBufferPointer { (y: inout UnsafeMutableBufferPointer<Scalar>) throws(SSMError) in
                    try forwardRecurrent(u, parameters: view, batch: B, length: L, into: y)
                }
            }
        }
        return y
    }

    /// One forward pass on arrays: y from u, both (B, L, H) in ``layout``; `parameters` is a set
    /// of this mixer's declarations (`parameters(_:)`). The returned activations serve
    /// `backward(_:input:activations:parameters:)`.
    public func forward(_ u: [Scalar], batch B: Int, length L: Int,
                        parameters p: ParameterSet<Scalar>) throws(SSMError) -> (y: [Scalar], activations: Activations) {
        try checkLayout(p)
        try checkSequence(u.count, "u", batch: B, length: L)
        let act = try makeActivations(batch: B, length: L)
        var y = [Scalar](repeating: 0, count: u.count)
        try u.withUnsafeBufferPointer { (u: UnsafeBufferPointer<Scalar>) throws(SSMError) in
            try p.storage.withUnsafeBufferPointer { (pb: UnsafeBufferPointer<Scalar>) throws(SSMError) in
                try y.withUnsafeMutableBufferPointer { (y: inout UnsafeMutableBufferPointer<Scalar>) throws(SSMError) in
                    try forward(u, parameters: ParameterView(base: pb.baseAddress!, layout: ParameterLayout(parameterDeclarations)),
                                activations: act, into: y)
                }
            }
        }
        return (y, act)
    }

    /// The gradients of Σ dY ⊙ y for the pass that made `activations` from u: dInput (the shape
    /// of u) and every parameter (a set of the same layout as `parameters`).
    public func backward(_ dY: [Scalar], input u: [Scalar], activations act: Activations,
                         parameters p: ParameterSet<Scalar>) throws(SSMError) -> (dInput: [Scalar], gradients: ParameterSet<Scalar>) {
        try checkLayout(p)
        guard dY.count == u.count else { throw SSMError.shape(argument: "d_y", expected: "\(u.count) values, as u", actual: [dY.count]) }
        var dU = [Scalar](repeating: 0, count: u.count)
        var g = p.zeros()
        let layout = ParameterLayout(parameterDeclarations)
        try dY.withUnsafeBufferPointer { (dY: UnsafeBufferPointer<Scalar>) throws(SSMError) in
            try u.withUnsafeBufferPointer { (u: UnsafeBufferPointer<Scalar>) throws(SSMError) in
                try p.storage.withUnsafeBufferPointer { (pb: UnsafeBufferPointer<Scalar>) throws(SSMError) in
                    try dU.withUnsafeMutableBufferPointer { (dU: inout UnsafeMutableBufferPointer<Scalar>) throws(SSMError) in
                        try g.storage.withUnsafeMutableBufferPointer { (gb: inout UnsafeMutableBufferPointer<Scalar>) throws(SSMError) in
                            try backward(dY, input: u, parameters: ParameterView(base: pb.baseAddress!, layout: layout), activations: act,
                                         dInput: dU, gradients: GradientView(base: gb.baseAddress!, layout: layout))
                        }
                    }
                }
            }
        }
        return (dU, g)
    }
}
