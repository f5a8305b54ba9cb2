import SSMKit

/// A mixer whose scan mode can start from and leave a recurrent state (Mamba, Mamba-2): a
/// prompt is prefilled by the scan, in chunks if long, and decoding continues by `step(_:_:parameters:into:)`.
public protocol PrefillMixer<Scalar>: SequenceMixer {
    /// Buffers for passes that keep nothing for backward; mixers of one configuration may
    /// share them, one pass at a time.
    func makeInferenceActivations(batch: Int, length: Int) throws(SSMError) -> Activations

    /// Scan mode from `state`: B sequences of L tokens h (B, L, H) → out (B, L, H), leaving in
    /// `state` the state after the last token, as L steps would. `activations` (of this (B, L))
    /// are the pass's buffers; without them the mixer uses its own.
    func prefill(_ h: UnsafeBufferPointer<Scalar>, length: Int, parameters: ParameterView<Scalar>, state: inout State,
                 activations: Activations?, into out: UnsafeMutableBufferPointer<Scalar>) throws(SSMError)
}

extension MambaMixer: PrefillMixer {}
extension Mamba2Mixer: PrefillMixer {}

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
