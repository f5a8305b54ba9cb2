import SSMKit

/// The S4D layer of the official `S4D` module (state-spaces/s4 models/s4/s4d.py), with its
/// backward pass. Legend: B batch · H channels · N2 complex modes · L length.
///
///     k = S4DKernel(log_dt, C, log_A_real, A_imag)            (H, L), ZOH
///     z = k ∗ u + D·u                                         causal FFT convolution
///     g = GELU(z)                                             exact (erf) form
///     a = W·g + b                                             1×1 convolution, (B, 2H, L)
///     y = a[:, :H] ⊙ σ(a[:, H:])                              GLU over channels
///
/// Parameters use the official names: `kernel.log_dt`, `kernel.C`, `kernel.log_A_real`,
/// `kernel.A_imag`, `D`, `output_linear.0.weight` (2H, H, 1), `output_linear.0.bias` (2H).
/// Dropout is the identity (evaluation, or the official default of 0).
public struct S4DLayer<T: FFTScalar>: Sendable {
    public let channels: Int
    public let modes: Int
    public var threads: Int
    /// The FFT planner effort (nil: `FFT/defaultEffort`).
    public var effort: FFTPlannerEffort?

    /// The layer's parameters (complex C as Complex<T>, W as (2H, H) row-major).
    public struct Parameters: Sendable {
        public var logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], d: [T], weight: [T], bias: [T]
        public init(logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], d: [T], weight: [T], bias: [T]) {
            (self.logDt, self.c, self.logAReal, self.aImag, self.d, self.weight, self.bias) = (logDt, c, logAReal, aImag, d, weight, bias)
        }
    }

    /// What the forward pass keeps for the backward pass.
    public struct Activations: Sendable {
        let head: GatedConvolution<T>.Activations
    }

    public init(channels: Int, modes: Int, threads: Int? = nil, effort: FFTPlannerEffort? = nil) throws(SSMError) {
        guard channels >= 1, modes >= 1 else {
            throw SSMError.value(argument: "channels, modes", expected: "positive counts, got (\(channels), \(modes))")
        }
        self.channels = channels
        self.modes = modes
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        self.effort = effort
    }

    func check(_ p: Parameters) throws(SSMError) {
        let (H, N2) = (channels, modes)
        for (name, count, expected) in [("D", p.d.count, H), ("output_linear.0.weight", p.weight.count, 2 * H * H),
                                        ("output_linear.0.bias", p.bias.count, 2 * H)] where count != expected {
            throw SSMError.shape(argument: name, expected: "\(expected) values", actual: [count])
        }
        if p.c.count != H * N2 { throw SSMError.shape(argument: "kernel.C", expected: "(H, N2) = (\(H), \(N2)) complex", actual: [p.c.count]) }
    }

    /// y: (B, H, L) from u: (B, H, L).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ u: [T], batch B: Int, length L: Int, parameters p: Parameters) throws(SSMError) -> (y: [T], activations: Activations) {
        try check(p)
        let kernel = try self.kernel
        let (y, head) = try GatedConvolution<T>(channels: channels, threads: threads, effort: effort)
            .forward(u, batch: B, length: L, d: p.d, weight: p.weight, bias: p.bias) { (k: inout [T]) throws(SSMError) in
                try kernel.forward(length: L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, k: &k)
            }
        return (y, Activations(head: head))
    }

    /// Gradients of Σ dY ⊙ y: dU (B, H, L) and every parameter.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(dY: [T], activations act: Activations, parameters p: Parameters) throws(SSMError) -> (dU: [T], dParameters: Parameters) {
        try check(p)
        let (H, N2, L) = (channels, modes, act.head.length)
        let g = try GatedConvolution<T>(channels: H, threads: threads, effort: effort).backward(dY: dY, activations: act.head, d: p.d, weight: p.weight)
        var dLogDt = [T](repeating: 0, count: H), dLogAReal = [T](repeating: 0, count: H * N2), dAImag = dLogAReal
        var dC = [Complex<T>](repeating: .zero, count: H * N2)
        var dB: [Complex<T>]? = nil
        try kernel.backward(length: L, dK: g.dK, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag,
                            dLogDt: &dLogDt, dC: &dC, dLogAReal: &dLogAReal, dAImag: &dAImag, dB: &dB)
        return (g.dU, Parameters(logDt: dLogDt, c: dC, logAReal: dLogAReal, aImag: dAImag, d: g.dD, weight: g.dWeight, bias: g.dBias))
    }

    /// The S4D convolution kernel of this layer (ZOH, as the official layer).
    public var kernel: S4DKernel<T> {
        get throws(SSMError) { try S4DKernel<T>(channels: channels, modes: modes, discretization: .zoh, threads: threads) }
    }
}
