import SSMKit

/// What the official S4 and S4D layers do with a kernel k once it is made. Legend: B batch ·
/// H channels · L length; every buffer channel-major, u: (B, H, L).
///
///     z = k ∗ u + D·u          causal FFT convolution with the skip (FFTConvolution)
///     g = GELU(z)              exact (erf) form
///     a = W·g + b              1×1 convolution, W: (2H, H), a: (B, 2H, L)
///     y = a[:, :H] ⊙ σ(a[:, H:])   GLU over channels
///
/// The kernel's own parameters and their gradients belong to the caller (``S4DLayer``,
/// ``S4Layer``): backward returns dK for it to pass on.
public struct GatedConvolution<T: FFTScalar>: Sendable {
    public let channels: Int
    public var threads: Int
    /// The FFT planner effort (nil: `FFT/defaultEffort`).
    public var effort: FFTPlannerEffort?

    /// What forward keeps for backward.
    public struct Activations: Sendable {
        public let batch: Int, length: Int
        /// GELU′(z), kept from forward so that backward is one product.
        /// σ of the GLU's gate half, kept likewise.
        let u: [T], k: [T], geluDerivative: [T], g: [T], a: [T], gate: [T]
    }

    public init(channels: Int, threads: Int, effort: FFTPlannerEffort? = nil) {
        self.channels = channels
        self.threads = threads
        self.effort = effort
    }

    /// y: (B, H, L) from u: (B, H, L), k: (H, L), D: (H), W: (2H, H), b: (2H).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ u: [T], kernel k: [T], d: [T], weight: [T], bias: [T], batch B: Int,
                        length L: Int) throws(SSMError) -> (y: [T], activations: Activations) {
        let H = channels
        let conv = try FFTConvolution<T>(shape: ConvolutionShape(batch: B, channels: H, length: L), threads: threads, effort: effort)
        var z = [T](repeating: 0, count: B * H * L)
        try conv.forward(u: u, kernel: k, skip: d, y: &z)
        let (g, derivative) = Activation.gelu.forwardWithDerivative(z, threads: threads)
        let (y, a, gate) = gatedOutput(g, weight: weight, bias: bias, batch: B, length: L)
        return (y, Activations(batch: B, length: L, u: u, k: k, geluDerivative: derivative, g: g, a: a, gate: gate))
    }

    /// The whole layer for a kernel that `makeKernel` writes into k: (H, L): checks u: (B, H, L),
    /// makes the kernel, then runs ``forward(_:kernel:d:weight:bias:batch:length:)``.
    func forward(_ u: [T], batch B: Int, length L: Int, d: [T], weight: [T], bias: [T],
                 makeKernel: (inout [T]) throws(SSMError) -> Void) throws(SSMError) -> (y: [T], activations: Activations) {
        let H = channels
        if u.count != B * H * L { throw SSMError.shape(argument: "u", expected: "(B, H, L) = (\(B), \(H), \(L))", actual: [u.count]) }
        var k = [T](repeating: 0, count: H * L)
        try makeKernel(&k)
        return try forward(u, kernel: k, d: d, weight: weight, bias: bias, batch: B, length: L)
    }

    /// Everything after the convolution: g = GELU(z), a = W·g + b, y = GLU(a). The recurrent
    /// mode runs the same function on the z that the recurrence produces.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func output(_ z: [T], weight: [T], bias: [T], batch B: Int, length L: Int) -> (y: [T], g: [T], a: [T]) {
        let g = Activation.gelu.forward(z, threads: threads)
        let (y, a, _) = gatedOutput(g, weight: weight, bias: bias, batch: B, length: L)
        return (y, g, a)
    }

    /// a = W·g + b, y = GLU(a).
    func gatedOutput(_ g: [T], weight: [T], bias: [T], batch B: Int, length L: Int) -> (y: [T], a: [T], gate: [T]) {
        let H = channels
        let a = PointwiseConvolution.forward(g, weight: weight, bias: bias, batch: B, inputs: H, outputs: 2 * H, length: L,
                                             threads: threads)
        let (y, gate) = GLU.forwardWithGate(a, blocks: B, half: H * L, threads: threads)
        return (y, a, gate)
    }

    /// The gradients of Σ dY ⊙ y, in the reverse order of forward: dU (B, H, L), dK (H, L),
    /// dD (H), dW (2H, H), dBias (2H).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(dY: [T], activations act: Activations, d: [T], weight: [T]) throws(SSMError)
        -> (dU: [T], dK: [T], dD: [T], dWeight: [T], dBias: [T]) {
        let (B, H, L) = (act.batch, channels, act.length)
        if dY.count != B * H * L { throw SSMError.shape(argument: "d_y", expected: "(B, H, L) = (\(B), \(H), \(L))", actual: [dY.count]) }
        var dA = [T](repeating: 0, count: B * 2 * H * L)
        GLU.backward(dY: dY, x: act.a, gate: act.gate, blocks: B, half: H * L, dX: &dA, threads: threads)
        var dW = [T](repeating: 0, count: 2 * H * H), dBias = [T](repeating: 0, count: 2 * H)
        var dG = [T](repeating: 0, count: B * H * L)
        PointwiseConvolution.backward(dY: dA, x: act.g, weight: weight, batch: B, inputs: H, outputs: 2 * H, length: L,
                                      dX: &dG, dWeight: &dW, dBias: &dBias, threads: threads)
        var dZ = dG
        for i in dZ.indices { dZ[i] *= act.geluDerivative[i] }
        let conv = try FFTConvolution<T>(shape: ConvolutionShape(batch: B, channels: H, length: L), threads: threads, effort: effort)
        var dU: [T]? = [T](repeating: 0, count: B * H * L), dK: [T]? = [T](repeating: 0, count: H * L)
        var dD: [T]? = [T](repeating: 0, count: H)
        try conv.backward(dY: dZ, u: act.u, kernel: act.k, skip: d, dU: &dU, dK: &dK, dD: &dD)
        return (dU!, dK!, dD!, dW, dBias)
    }
}
