import SSMKit

/// An S4 (DPLR) layer of the same shape as ``S4DLayer``: the official DPLR kernel
/// (`SSMKernelDPLR`, s4.py) followed by ``GatedConvolution`` (FFT convolution + D, GELU, 1×1
/// convolution, GLU). Legend: B batch · H channels · S SSMs · N2 modes · R rank · L length.
///
///     k = S4Kernel(inv_dt, A_real, A_imag, B, P, C̃)   (H, L), bilinear, C̃ attuned to L
///     y = GatedConvolution(u, k, D, W, b)
///
/// Parameters under the official names: `kernel.inv_dt` (H, 1), `kernel.A_real` (S, N2),
/// `kernel.A_imag` (S, N2), `kernel.B` (S, N2, 2), `kernel.P` (R, S, N2, 2), `kernel.C`
/// (1, H, N2, 2), `D` (H), `output_linear.0.weight` (2H, H, 1), `output_linear.0.bias` (2H).
public struct S4Layer<T: FFTScalar>: Sendable {
    public let channels: Int
    public let ssms: Int
    public let modes: Int
    public let rank: Int
    public var threads: Int
    /// The FFT planner effort (nil: `FFT/defaultEffort`).
    public var effort: FFTPlannerEffort?

    public struct Parameters: Sendable {
        public var invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>], cTilde: [Complex<T>]
        public var d: [T], weight: [T], bias: [T]
        public init(invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>], cTilde: [Complex<T>],
                    d: [T], weight: [T], bias: [T]) {
            (self.invDt, self.aReal, self.aImag, self.b, self.p, self.cTilde) = (invDt, aReal, aImag, b, p, cTilde)
            (self.d, self.weight, self.bias) = (d, weight, bias)
        }
    }

    public struct Activations: Sendable {
        let head: GatedConvolution<T>.Activations
    }

    public init(channels: Int, ssms: Int, modes: Int, rank: Int = 1, threads: Int? = nil, effort: FFTPlannerEffort? = nil) throws(SSMError) {
        guard channels >= 1, ssms >= 1, channels % ssms == 0, modes >= 1, rank >= 1 else {
            throw SSMError.value(argument: "channels, ssms, modes, rank",
                                 expected: "positive counts with S dividing H, got (\(channels), \(ssms), \(modes), \(rank))")
        }
        (self.channels, self.ssms, self.modes, self.rank) = (channels, ssms, modes, rank)
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        self.effort = effort
    }

    /// The layer's DPLR kernel.
    public var kernel: S4Kernel<T> {
        get throws(SSMError) { try S4Kernel<T>(copies: 1, channels: channels, ssms: ssms, modes: modes, rank: rank, threads: threads, effort: effort) }
    }

    func check(_ p: Parameters) throws(SSMError) {
        let H = channels
        for (name, count, expected) in [("D", p.d.count, H), ("output_linear.0.weight", p.weight.count, 2 * H * H),
                                        ("output_linear.0.bias", p.bias.count, 2 * H)] where count != expected {
            throw SSMError.shape(argument: name, expected: "\(expected) values", actual: [count])
        }
    }

    /// y: (B, H, L) from u: (B, H, L).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ u: [T], batch B: Int, length L: Int, parameters p: Parameters) throws(SSMError) -> (y: [T], activations: Activations) {
        try check(p)
        let kernel = try self.kernel
        let (y, head) = try GatedConvolution<T>(channels: channels, threads: threads, effort: effort)
            .forward(u, batch: B, length: L, d: p.d, weight: p.weight, bias: p.bias) { (k: inout [T]) throws(SSMError) in
                try kernel.forward(length: L, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, b: p.b, p: p.p, cTilde: p.cTilde, k: &k)
            }
        return (y, Activations(head: head))
    }

    /// Gradients of Σ dY ⊙ y: dU (B, H, L) and every parameter.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(dY: [T], activations act: Activations, parameters p: Parameters) throws(SSMError) -> (dU: [T], dParameters: Parameters) {
        try check(p)
        let L = act.head.length
        let g = try GatedConvolution<T>(channels: channels, threads: threads, effort: effort).backward(dY: dY, activations: act.head, d: p.d, weight: p.weight)
        var dInvDt = [T](repeating: 0, count: p.invDt.count), dAReal = [T](repeating: 0, count: p.aReal.count), dAImag = dAReal
        var dB = [Complex<T>](repeating: .zero, count: p.b.count), dP = [Complex<T>](repeating: .zero, count: p.p.count)
        var dC = [Complex<T>](repeating: .zero, count: p.cTilde.count)
        try kernel.backward(length: L, dK: g.dK, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, b: p.b, p: p.p, cTilde: p.cTilde,
                            dInvDt: &dInvDt, dAReal: &dAReal, dAImag: &dAImag, dB: &dB, dP: &dP, dC: &dC)
        return (g.dU, Parameters(invDt: dInvDt, aReal: dAReal, aImag: dAImag, b: dB, p: dP, cTilde: dC, d: g.dD,
                                 weight: g.dWeight, bias: g.dBias))
    }

    /// The recurrent form of this layer's convolution (with D), for step mode: the kernel's
    /// C̃ is attuned to `length` L, the length the layer was trained at.
    public func recurrence(length L: Int, parameters p: Parameters, mode: S4Recurrence.StepMode = .linear) throws(SSMError) -> S4Recurrence {
        try S4Recurrence(kernel: kernel, mode: mode, length: L, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag, b: p.b, p: p.p,
                         cTilde: p.cTilde, skip: p.d)
    }
}
