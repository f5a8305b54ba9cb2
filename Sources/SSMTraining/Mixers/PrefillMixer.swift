import SSMKit

/// A mixer whose scan mode can start from and leave a recurrent state (Mamba, Mamba-2): a
/// prompt is prefilled by the scan, in chunks if long, and decoding continues by `step(_:_:parameters:into:)`.
public protocol PrefillMixer<Scalar>: SequenceMixer where State: ConvolutionScanState<Scalar> {
    /// The shapes of B sequences' conv and SSM states, and their axes, e.g. (B, E, K) and
    /// (B, E, N) for Mamba.
    func stateShapes(batch: Int) -> (conv: [Int], ssm: [Int], axes: (conv: String, ssm: String))

    /// A state from saved values (shapes ``stateShapes(batch:)``).
    /// - Throws: `SSMError` naming `conv_state` or `ssm_state` when a count does not fit.
    func makeState(batch: Int, conv: [Scalar], ssm: [Scalar]) throws(SSMError) -> State

    /// Buffers for passes that keep nothing for backward; mixers of one configuration may
    /// share them, one pass at a time.
    func makeInferenceActivations(batch: Int, length: Int) throws(SSMError) -> Activations

    /// Scan mode from `state`: B sequences of L tokens h (B, L, H) → out (B, L, H), leaving in
    /// `state` the state after the last token, as L steps would. `activations` (of this (B, L))
    /// are the pass's buffers; without them the mixer uses its own.
    func prefill(_ h: UnsafeBufferPointer<Scalar>, length: Int, parameters: ParameterView<Scalar>, state: inout State,
                 activations: Activations?, into out: UnsafeMutableBufferPointer<Scalar>) throws(SSMError)
}

extension MambaMixer: PrefillMixer {
    public func stateShapes(batch B: Int) -> (conv: [Int], ssm: [Int], axes: (conv: String, ssm: String)) {
        let c = configuration
        return ([B, c.innerWidth, c.convWidth], [B, c.innerWidth, c.state], ("(B, E, K)", "(B, E, N)"))
    }
}

extension Mamba2Mixer: PrefillMixer {
    public func stateShapes(batch B: Int) -> (conv: [Int], ssm: [Int], axes: (conv: String, ssm: String)) {
        let c = configuration
        return ([B, c.convChannels, c.convWidth], [B, c.heads, c.headDimension, c.state], ("(B, C, K)", "(B, H, P, N)"))
    }
}

/// The recurrent state of a mixer whose memory is a causal conv's window and an SSM state
/// (Mamba, Mamba-2), for B sequences, sequence-major.
public protocol ConvolutionScanState<Scalar>: Sendable {
    associatedtype Scalar
    var batch: Int { get }
    /// The last inputs of the conv, per sequence.
    var conv: [Scalar] { get set }
    /// The scan's state, per sequence.
    var ssm: [Scalar] { get set }
    /// A zero state of the same sizes for `batch` sequences.
    func zero(batch: Int) -> Self
}

extension ConvolutionScanState {
    /// The state of sequences `r` alone.
    public func rows(_ r: Range<Int>) -> Self {
        let (convRow, ssmRow) = (conv.count / batch, ssm.count / batch)
        var s = zero(batch: r.count)
        s.conv = Array(conv[r.lowerBound * convRow ..< r.upperBound * convRow])
        s.ssm = Array(ssm[r.lowerBound * ssmRow ..< r.upperBound * ssmRow])
        return s
    }

    /// Replaces sequences `r` with those of `other` (a state of r.count sequences).
    public mutating func setRows(_ r: Range<Int>, from other: Self) {
        precondition(other.batch == r.count, "setRows: \(other.batch) sequences for \(r.count) rows")
        let (convRow, ssmRow) = (conv.count / batch, ssm.count / batch)
        conv.replaceSubrange(r.lowerBound * convRow ..< r.upperBound * convRow, with: other.conv)
        ssm.replaceSubrange(r.lowerBound * ssmRow ..< r.upperBound * ssmRow, with: other.ssm)
    }
}

extension PrefillMixer {
    /// Throws unless conv and ssm hold B sequences' states of this mixer.
    func checkState(batch B: Int, conv: Int, ssm: Int) throws(SSMError) {
        guard B >= 1 else { throw SSMError.value(argument: "batch", expected: "a positive count, got \(B)") }
        let shapes = stateShapes(batch: B)
        guard conv == shapes.conv.reduce(1, *) else {
            throw SSMError.shape(argument: "conv_state", expected: "\(shapes.axes.conv) = \(shapes.conv)", actual: [conv])
        }
        guard ssm == shapes.ssm.reduce(1, *) else {
            throw SSMError.shape(argument: "ssm_state", expected: "\(shapes.axes.ssm) = \(shapes.ssm)", actual: [ssm])
        }
    }
}

extension PrefillMixer {
    /// `step(_:_:parameters:into:)` on arrays, with a set of this mixer's declarations:
    /// h (B, H) → out (B, H).
    public func step(_ state: inout State, _ h: [Scalar], parameters p: ParameterSet<Scalar>) throws(SSMError) -> [Scalar] {
        let B = h.count / Swift.max(1, width)
        var out = [Scalar](repeating: 0, count: B * width)
        try withParameterView(p) { (view: ParameterView<Scalar>) throws(SSMError) in
            try h.withUnsafeBufferPointer { (h: UnsafeBufferPointer<Scalar>) throws(SSMError) in
                try out.withUnsafeMutableBufferPointer { (out: inout UnsafeMutableBufferPointer<Scalar>) throws(SSMError) in
                    try step(&state, h, parameters: view, into: out)
                }
            }
        }
        return out
    }

    /// ``prefill(_:length:parameters:state:activations:into:)`` on arrays: h (B, L, H) → out (B, L, H).
    public func prefill(_ h: [Scalar], length L: Int, parameters p: ParameterSet<Scalar>, state: inout State) throws(SSMError) -> [Scalar] {
        var out = [Scalar](repeating: 0, count: h.count)
        try withParameterView(p) { (view: ParameterView<Scalar>) throws(SSMError) in
            try h.withUnsafeBufferPointer { (h: UnsafeBufferPointer<Scalar>) throws(SSMError) in
                try out.withUnsafeMutableBufferPointer { (out: inout UnsafeMutableBufferPointer<Scalar>) throws(SSMError) in
                    try prefill(h, length: L, parameters: view, state: &state, activations: nil, into: out)
                }
            }
        }
        return out
    }
}
