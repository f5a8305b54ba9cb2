import SSMKit

/// What the official S4 and S4D layers do with a kernel k once it is made. Legend: B batch ·
/// H channels · L length; every buffer channel-major, u: (B, H, L).
///
///     z = k ∗ u + D·u          causal FFT convolution with the skip (FFTConvolution)
///     g = GELU(z)              exact (erf) form, as each row of z leaves the inverse FFT
///     a = W·g + b              1×1 convolution, W: (2H, H), a: (B, 2H, L)
///     y = a[:, :H] ⊙ σ(a[:, H:])   GLU over channels
///
/// The kernel's own parameters belong to the mixer that makes k (``S4DMixer``, ``S4Mixer``):
/// the mixer writes k into ``Activations/kernel`` before forward and reads dK from
/// ``Activations/dKernel`` after backward. The FFT convolution of each (B, L) is planned once
/// and reused.
public final class GatedConvolution<T: SSMScalar>: @unchecked Sendable {
    public let channels: Int
    public let threads: Int
    /// The FFT planner effort (nil: `FFT/defaultEffort`).
    public let effort: FFTPlannerEffort?
    private let plans = ReusePool<PassShape, FFTConvolution<T>>()

    public init(channels: Int, threads: Int, effort: FFTPlannerEffort? = nil) {
        (self.channels, self.threads, self.effort) = (channels, threads, effort)
    }

    /// The buffers of one (B, L): forward's intermediates, kept for backward, and backward's
    /// scratch. Made once per (B, L) and reused.
    public final class Activations {
        public let batch: Int, length: Int
        /// k: (H, L), written by the mixer before forward.
        public var kernel: [T]
        /// dK: (H, L), written by backward (overwritten).
        public internal(set) var dKernel: [T]
        /// GELU′(z) and σ of the GLU's gate half, kept from forward so backward is products.
        var geluDerivative: [T], g: [T], a: [T], gate: [T]
        /// Scratch: dG (backward); dA; dW's partials.
        var dG: [T], dA: [T], partials: [T]

        init(channels H: Int, batch B: Int, length L: Int, threads: Int) {
            (batch, length) = (B, L)
            kernel = [T](repeating: 0, count: H * L)
            dKernel = kernel
            geluDerivative = [T](repeating: 0, count: B * H * L)
            (g, gate, dG) = (geluDerivative, geluDerivative, geluDerivative)
            a = [T](repeating: 0, count: B * 2 * H * L)
            dA = a
            partials = [T](repeating: 0, count: PointwiseConvolution.partialCount(batch: B, inputs: H, outputs: 2 * H, threads: threads))
        }
    }

    public func makeActivations(batch B: Int, length L: Int) throws(SSMError) -> Activations {
        guard B >= 1, L >= 1 else { throw SSMError.value(argument: "batch, length", expected: "positive sizes, got (\(B), \(L))") }
        return Activations(channels: channels, batch: B, length: L, threads: threads)
    }

    private func convolution(_ act: Activations) throws(SSMError) -> FFTConvolution<T> {
        try plans.take(PassShape(batch: act.batch, length: act.length)) { () throws(SSMError) in
            try FFTConvolution<T>(shape: ConvolutionShape(batch: act.batch, channels: channels, length: act.length), threads: threads,
                                  effort: effort)
        }
    }

    /// Throws unless `count` values are (B, H, L) for `act`.
    func check(_ count: Int, _ name: String, _ act: Activations) throws(SSMError) {
        guard count == act.batch * channels * act.length else {
            throw SSMError.shape(argument: name, expected: "(B, H, L) = (\(act.batch), \(channels), \(act.length))", actual: [count])
        }
    }

    /// ``forward(_:d:weight:bias:activations:residual:into:)`` with D, W and b read from a
    /// mixer's parameters at `slots`, the counts of u and y checked.
    public func forward(_ u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>, slots: OutputStageSlots, activations act: Activations,
                        residual: UnsafePointer<T>? = nil, into y: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        try check(u.count, "u", act)
        try check(y.count, "y", act)
        try forward(u.baseAddress!, d: p[slots.d].baseAddress!, weight: p[slots.weight].baseAddress!, bias: p[slots.bias].baseAddress!,
                    activations: act, residual: residual, into: y.baseAddress!)
    }

    /// ``backward(_:input:d:weight:activations:dInput:dD:dWeight:dBias:)`` with D, W, b and
    /// their gradients at `slots` of a mixer's views, the count of dY checked.
    public func backward(_ dY: UnsafeBufferPointer<T>, input u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>, slots: OutputStageSlots,
                         activations act: Activations, dInput: UnsafeMutableBufferPointer<T>, gradients g: GradientView<T>) throws(SSMError) {
        try check(dY.count, "d_y", act)
        try backward(dY.baseAddress!, input: u.baseAddress!, d: p[slots.d].baseAddress!, weight: p[slots.weight].baseAddress!,
                     activations: act, dInput: dInput.baseAddress!, dD: g[slots.d].baseAddress!, dWeight: g[slots.weight].baseAddress!,
                     dBias: g[slots.bias].baseAddress!)
    }

    /// y: (B, H, L) from u: (B, H, L) and the kernel in `act.kernel`; D: (H), W: (2H, H), b: (2H).
    /// With `residual` ((B, H, L), not overlapping y), y = residual + GLU(a): the block's
    /// residual connection added by the GLU's pass, with the bits of a separate addition.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ u: UnsafePointer<T>, d: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>,
                        activations act: Activations, residual: UnsafePointer<T>? = nil, into y: UnsafeMutablePointer<T>) throws(SSMError) {
        let (B, H, L) = (act.batch, channels, act.length)
        let conv = try convolution(act)
        // g = GELU(z) and GELU′(z) as each row of z leaves the inverse transform.
        act.kernel.withUnsafeBufferPointer { k in
            act.g.withUnsafeMutableBufferPointer { g in
                act.geluDerivative.withUnsafeMutableBufferPointer { derivative in
                    conv.forward(u: u, kernel: k.baseAddress!, skip: d, y: g.baseAddress!, geluDerivative: derivative.baseAddress!)
                }
            }
        }
        // The GLU on each sequence right after its GEMM when the sequences fill the workers;
        // otherwise as a pass of its own, split over positions.
        let perSequence = B >= threads
        act.g.withUnsafeBufferPointer { g in
            act.a.withUnsafeMutableBufferPointer { a in
                act.gate.withUnsafeMutableBufferPointer { gate in
                    PointwiseConvolution.forward(g.baseAddress!, weight: weight, bias: bias, y: a.baseAddress!, batch: B, inputs: H,
                                                 outputs: 2 * H, length: L,
                                                 glu: perSequence ? GLUStage(y: y, gate: gate.baseAddress!, residual: residual) : nil,
                                                 threads: threads)
                    if !perSequence {
                        GLU.forwardWithGate(a.baseAddress!, residual: residual, y: y, gate: gate.baseAddress!, blocks: B, half: H * L,
                                            threads: threads)
                    }
                }
            }
        }
    }

    /// The gradients of Σ dY ⊙ y in the reverse order of forward: dU (B, H, L), dD (H),
    /// dW (2H, H) and dBias (2H) added to (+=); dK (H, L) written to `act.dKernel`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(_ dY: UnsafePointer<T>, input u: UnsafePointer<T>, d: UnsafePointer<T>, weight: UnsafePointer<T>,
                         activations act: Activations, dInput: UnsafeMutablePointer<T>, dD: UnsafeMutablePointer<T>,
                         dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>) throws(SSMError) {
        let (B, H, L) = (act.batch, channels, act.length)
        let conv = try convolution(act)
        // dA through the GLU (per sequence inside the 1×1 convolution's backward, as forward
        // did), then dG into its own buffer; the convolution's backward takes dZ = dG ⊙ GELU′(z)
        // as it reads each row.
        let perSequence = B >= threads
        act.a.withUnsafeBufferPointer { a in
            act.gate.withUnsafeBufferPointer { gate in
                act.dA.withUnsafeMutableBufferPointer { dA in
                    if !perSequence {
                        GLU.backward(dY: dY, x: a.baseAddress!, gate: gate.baseAddress!, blocks: B, half: H * L, dX: dA.baseAddress!,
                                     accumulate: false, threads: threads)
                    }
                    act.g.withUnsafeBufferPointer { g in
                        act.dG.withUnsafeMutableBufferPointer { dG in
                            act.partials.withUnsafeMutableBufferPointer { partials in
                                PointwiseConvolution.backward(dY: dA.baseAddress!, x: g.baseAddress!, weight: weight, batch: B, inputs: H,
                                                              outputs: 2 * H, length: L, dX: dG.baseAddress!, accumulate: false, dWeight: dWeight,
                                                              dBias: dBias, partials: partials.baseAddress!,
                                                              glu: perSequence ? GLUGradientStage(dY: dY, a: a.baseAddress!, gate: gate.baseAddress!) : nil,
                                                              threads: threads)
                            }
                        }
                    }
                }
            }
        }
        act.dG.withUnsafeBufferPointer { dG in
            act.geluDerivative.withUnsafeBufferPointer { derivative in
                act.kernel.withUnsafeBufferPointer { k in
                    act.dKernel.withUnsafeMutableBufferPointer { dK in
                        dK.update(repeating: 0)
                        conv.backward(dY: dG.baseAddress!, u: u, kernel: k.baseAddress!, skip: d, dU: dInput, dK: dK.baseAddress!, dD: dD,
                                      outputDerivative: derivative.baseAddress!)
                    }
                }
            }
        }
    }

    /// Step mode of a convolution mixer: its recurrence (the kernel and D as a state space
    /// model), that recurrence's state for B sequences, the output stage's weights, and the
    /// buffers of one step (so that stepping allocates nothing).
    public struct RecurrentState {
        let engine: StepEngine<T>
        var state: StepEngine<T>.State
        let weight: [T], bias: [T]
        /// One step's z, GELU′ (scratch), g, gate (each B·H) and a (B·2H).
        var scratch: [T]
    }

    /// The zero state of `batch` sequences for `engine`, the recurrence of the mixer's kernel.
    public func makeState(engine: StepEngine<T>, batch: Int, weight: UnsafeBufferPointer<T>,
                          bias: UnsafeBufferPointer<T>) throws(SSMError) -> RecurrentState {
        RecurrentState(engine: engine, state: try engine.makeState(batch: batch), weight: Array(weight), bias: Array(bias),
                       scratch: [T](repeating: 0, count: 6 * batch * channels))
    }

    /// One token per sequence: u (B, H) → y (B, H): z from the recurrence's step, then the
    /// output stage. Allocates nothing.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func step(_ s: inout RecurrentState, _ u: UnsafeBufferPointer<T>, into y: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        let (B, H) = (s.state.batch, channels)
        guard u.count == B * H else { throw SSMError.shape(argument: "u", expected: "(B, H) = (\(B), \(H))", actual: [u.count]) }
        guard y.count == B * H else { throw SSMError.shape(argument: "y", expected: "(B, H) = (\(B), \(H))", actual: [y.count]) }
        let n = B * H
        // The buffers move out of the state for the step (no copy: an empty array allocates nothing).
        var buffers: [T] = []
        swap(&buffers, &s.scratch)
        defer { swap(&buffers, &s.scratch) }
        buffers.withUnsafeMutableBufferPointer { scratch in
            let (z, derivative, g, gate, a) = (scratch.baseAddress!, scratch.baseAddress! + n, scratch.baseAddress! + 2 * n,
                                               scratch.baseAddress! + 3 * n, scratch.baseAddress! + 4 * n)
            s.engine.step(&s.state, u: u.baseAddress!, y: z)
            geluWithDerivative(z, g, derivative, count: n)
            s.weight.withUnsafeBufferPointer { w in
                s.bias.withUnsafeBufferPointer { b in
                    PointwiseConvolution.forward(g, weight: w.baseAddress!, bias: b.baseAddress!, y: a, batch: B, inputs: H, outputs: 2 * H,
                                                 length: 1, threads: threads)
                }
            }
            GLU.forwardWithGate(a, y: y.baseAddress!, gate: gate, blocks: B, half: H, threads: threads)
        }
    }

    /// `length` tokens of B sequences, u and y (B, H, L): the recurrence stepped over every token
    /// (`StepEngine/run(_:u:y:length:)`), then the output stage on the whole z.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func run(_ s: inout RecurrentState, _ u: UnsafeBufferPointer<T>, length L: Int,
                    into y: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        var z = [T](repeating: 0, count: u.count)
        try s.engine.run(&s.state, u: Array(u), y: &z, length: L)
        let out = output(z, weight: s.weight, bias: s.bias, batch: z.count / (channels * L), length: L)
        for i in out.indices { y[i] = out[i] }
    }

    /// Everything after the convolution, for the recurrent mode: y (B, H, L) from the z that a
    /// recurrence produces: g = GELU(z) (as forward computes it), a = W·g + b, y = GLU(a).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func output(_ z: [T], weight: [T], bias: [T], batch B: Int, length L: Int) -> [T] {
        let H = channels
        let g = Activation.gelu.forwardWithDerivative(z, threads: threads).y
        let a = PointwiseConvolution.forward(g, weight: weight, bias: bias, batch: B, inputs: H, outputs: 2 * H, length: L, threads: threads)
        return GLU.forwardWithGate(a, blocks: B, half: H * L, threads: threads).y
    }
}

/// Where a ``GatedConvolution``'s parameters (D, W, b) sit among a mixer's declarations.
public struct OutputStageSlots: Sendable {
    public let d: Int, weight: Int, bias: Int
    public init(d: Int, weight: Int, bias: Int) { (self.d, self.weight, self.bias) = (d, weight, bias) }
}

/// A mixer whose output stage is a ``GatedConvolution`` (``S4DMixer``, ``S4Mixer``): it makes
/// the kernel and its recurrence, and its step mode is the head's, on that recurrence's state
/// (``GatedConvolution/RecurrentState``, made by the mixer's `makeState`).
public protocol GatedConvolutionMixer: SequenceMixer where State == GatedConvolution<Scalar>.RecurrentState {
    /// The output stage.
    var head: GatedConvolution<Scalar> { get }

    /// Forward with the block's residual added by the output stage's GLU pass when `residual`
    /// is given: the kernel made from the parameters, then ``GatedConvolution/forward(_:parameters:slots:activations:residual:into:)``.
    func forward(_ u: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>, activations: Activations,
                 residual: UnsafePointer<Scalar>?, into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError)
}

extension GatedConvolutionMixer {
    public func forward(_ u: UnsafeBufferPointer<Scalar>, parameters p: ParameterView<Scalar>, activations act: Activations,
                        into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError) {
        try forward(u, parameters: p, activations: act, residual: nil, into: y)
    }

    /// The residual added by the output stage's GLU pass.
    public func forward(_ u: UnsafeBufferPointer<Scalar>, parameters p: ParameterView<Scalar>, activations act: Activations,
                        adding residual: UnsafePointer<Scalar>, into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError) -> Bool {
        try forward(u, parameters: p, activations: act, residual: residual, into: y)
        return true
    }

    /// One token per sequence through the recurrence and the output stage.
    public func step(_ state: inout State, _ u: UnsafeBufferPointer<Scalar>, parameters p: ParameterView<Scalar>,
                     into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError) {
        try head.step(&state, u, into: y)
    }

    /// Whole sequences from the zero state: the recurrence over every token, then the output
    /// stage on all of z at once.
    public func forwardRecurrent(_ u: UnsafeBufferPointer<Scalar>, parameters p: ParameterView<Scalar>, batch B: Int, length L: Int,
                                 into y: UnsafeMutableBufferPointer<Scalar>) throws(SSMError) {
        try checkSequence(u.count, "u", batch: B, length: L)
        var state = try makeState(batch: B, length: L, parameters: p)
        try head.run(&state, u, length: L, into: y)
    }
}
