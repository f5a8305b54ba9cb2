import SSMKit

/// An S4 (DPLR) layer as a ``SequenceMixer``: the official DPLR kernel (`SSMKernelDPLR`,
/// s4.py) followed by the same head as ``S4DMixer``. Legend: B batch · H channels · S SSMs ·
/// N2 modes · L length; channel-major, u: (B, H, L).
///
///     k = S4Kernel(inv_dt, A_real, A_imag, B, P, C̃)   (H, L), bilinear, C̃ attuned to L
///     y = GatedConvolution(u, k, D, W, b)
///
/// Parameters (official names): `kernel.inv_dt` (H, 1), `kernel.A_real` (S, N2),
/// `kernel.A_imag` (S, N2), `kernel.B` (S, N2, 2), `kernel.P` (1, S, N2, 2), `kernel.C`
/// (1, H, N2, 2), `D` (H), `output_linear.0.weight` (2H, H, 1), `output_linear.0.bias` (2H).
/// One SSM per channel (S = H), rank 1, each starting from HiPPO-LegS
/// (`S4LegSInitialization`); C̃ complex normal. Step mode runs `S4Recurrence` (linear
/// form), whose C̃ is attuned to the length the state is made for.
public final class S4Mixer<T: SSMScalar>: GatedConvolutionMixer, @unchecked Sendable {
    public typealias Scalar = T
    public let width: Int
    public let modes: Int
    public let threads: Int
    public var layout: SequenceLayout { .channelMajor }
    public let parameterDeclarations: [ParameterDeclaration]
    let kernel: S4Kernel<T>
    /// The output stage (D, GELU, the 1×1 convolution, the GLU) and its step mode.
    public let head: GatedConvolution<T>


    public init(width H: Int, state N: Int, threads: Int? = nil, effort: FFTPlannerEffort? = nil) throws(SSMError) {
        guard H >= 1 else { throw SSMError.value(argument: "width", expected: "a positive count, got \(H)") }
        guard N >= 2, N % 2 == 0 else { throw SSMError.value(argument: "state", expected: "an even N ≥ 2, got \(N)") }
        let N2 = N / 2
        (width, modes) = (H, N2)
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        kernel = try S4Kernel<T>(copies: 1, channels: H, ssms: H, modes: N2, rank: 1, threads: self.threads, effort: effort)
        head = GatedConvolution<T>(channels: H, threads: self.threads, effort: effort)
        let form = try HiPPO.nplr(.legs, size: N)
        /// The LegS form's value of mode n, the same for every SSM.
        func tiled(_ f: @escaping @Sendable (Int) -> Double) -> ParameterInitialization {
            .custom { _, count in (0 ..< count).map { f($0) } }
        }
        func tiledComplex(_ v: [Complex<Double>]) -> ParameterInitialization {
            .custom { _, count in (0 ..< count / 2).flatMap { [v[$0 % N2].real, v[$0 % N2].imaginary] } }
        }
        let lambda = form.lambda
        let fanIn = 1 / Double(H).squareRoot()
        parameterDeclarations = [
            ParameterDeclaration("kernel.inv_dt", shape: [H, 1], group: .ssm,
                                 initialization: .custom { rng, count in rng.logTimeSteps(count: count) }),
            ParameterDeclaration("kernel.A_real", shape: [H, N2], group: .ssm, initialization: tiled { Double.log(-lambda[$0 % N2].real) }),
            ParameterDeclaration("kernel.A_imag", shape: [H, N2], group: .ssm, initialization: tiled { -lambda[$0 % N2].imaginary }),
            ParameterDeclaration("kernel.B", shape: [H, N2, 2], group: .ssm, initialization: tiledComplex(form.b)),
            ParameterDeclaration("kernel.P", shape: [1, H, N2, 2], group: .ssm, initialization: tiledComplex(form.p)),
            ParameterDeclaration("kernel.C", shape: [1, H, N2, 2], initialization: .custom { rng, count in
                (0 ..< count / 2).flatMap { _ in
                    let (x, y) = rng.nextStandardNormalPair()
                    return [x * 0.5.squareRoot(), y * 0.5.squareRoot()]
                }
            }),
            ParameterDeclaration("D", shape: [H], initialization: .normal(deviation: 1)),
            ParameterDeclaration("output_linear.0.weight", shape: [2 * H, H, 1], initialization: .uniform(bound: fanIn)),
            ParameterDeclaration("output_linear.0.bias", shape: [2 * H], initialization: .uniform(bound: fanIn)),
        ]
    }

    /// The head's buffers and the kernel's parameters and gradients as the kernel takes them.
    public final class Activations {
        let head: GatedConvolution<T>.Activations
        /// The kernel's scratch at this length.
        let kernelWorkspace: S4KernelWorkspace<T>
        var invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>], c: [Complex<T>]
        var dInvDt: [T], dAReal: [T], dAImag: [T], dB: [Complex<T>], dP: [Complex<T>], dC: [Complex<T>]

        init(head: GatedConvolution<T>.Activations, kernel: S4KernelWorkspace<T>, channels H: Int, modes N2: Int) {
            self.head = head
            kernelWorkspace = kernel
            invDt = [T](repeating: 0, count: H)
            aReal = [T](repeating: 0, count: H * N2)
            (aImag, dAReal, dAImag, dInvDt) = (aReal, aReal, aReal, invDt)
            b = [Complex<T>](repeating: .zero, count: H * N2)
            (p, c, dB, dP, dC) = (b, b, b, b, b)
        }

        func load(_ v: ParameterView<T>) {
            v.copy(S4Slot.invDt, into: &invDt)
            v.copy(S4Slot.aReal, into: &aReal)
            v.copy(S4Slot.aImag, into: &aImag)
            v.copy(S4Slot.b, into: &b)
            v.copy(S4Slot.p, into: &p)
            v.copy(S4Slot.c, into: &c)
        }
    }

    public func makeActivations(batch: Int, length: Int) throws(SSMError) -> Activations {
        Activations(head: try head.makeActivations(batch: batch, length: length), kernel: try S4KernelWorkspace(kernel, length: length),
                    channels: width, modes: modes)
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>, activations act: Activations,
                        residual: UnsafePointer<T>?, into y: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        try head.check(u.count, "u", act.head)
        act.load(p)
        try kernel.forward(length: act.head.length, invDt: act.invDt, aReal: act.aReal, aImag: act.aImag, b: act.b, p: act.p, cTilde: act.c,
                           k: &act.head.kernel, workspace: act.kernelWorkspace)
        try head.forward(u, parameters: p, slots: S4Slot.head, activations: act.head, residual: residual, into: y)
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(_ dY: UnsafeBufferPointer<T>, input u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>,
                         activations act: Activations, dInput: UnsafeMutableBufferPointer<T>, gradients g: GradientView<T>) throws(SSMError) {
        let L = act.head.length
        try head.backward(dY, input: u, parameters: p, slots: S4Slot.head, activations: act.head, dInput: dInput, gradients: g)
        for i in act.dInvDt.indices { act.dInvDt[i] = 0 }
        for i in act.dAReal.indices { (act.dAReal[i], act.dAImag[i], act.dB[i], act.dP[i], act.dC[i]) = (0, 0, .zero, .zero, .zero) }
        try kernel.backward(length: L, dK: act.head.dKernel, invDt: act.invDt, aReal: act.aReal, aImag: act.aImag, b: act.b, p: act.p,
                            cTilde: act.c, dInvDt: &act.dInvDt, dAReal: &act.dAReal, dAImag: &act.dAImag, dB: &act.dB, dP: &act.dP,
                            dC: &act.dC, workspace: act.kernelWorkspace)
        g.accumulate(S4Slot.invDt, act.dInvDt)
        g.accumulate(S4Slot.aReal, act.dAReal)
        g.accumulate(S4Slot.aImag, act.dAImag)
        g.accumulate(S4Slot.b, act.dB)
        g.accumulate(S4Slot.p, act.dP)
        g.accumulate(S4Slot.c, act.dC)
    }

    /// The recurrent form of this layer's convolution (with D), C̃ attuned to `length`.
    func recurrence(_ v: ParameterView<T>, length L: Int) throws(SSMError) -> S4Recurrence {
        func complex(_ slot: Int) -> [Complex<T>] { let x = v[slot]; return (0 ..< x.count / 2).map { Complex(x[2 * $0], x[2 * $0 + 1]) } }
        return try S4Recurrence(kernel: kernel, mode: .linear, length: L, invDt: v.array(S4Slot.invDt), aReal: v.array(S4Slot.aReal),
                                aImag: v.array(S4Slot.aImag), b: complex(S4Slot.b), p: complex(S4Slot.p), cTilde: complex(S4Slot.c),
                                skip: v.array(S4Slot.d))
    }

    public typealias State = GatedConvolution<T>.RecurrentState

    public func makeState(batch: Int, length: Int, parameters p: ParameterView<T>) throws(SSMError) -> State {
        try head.makeState(engine: StepEngine(try recurrence(p, length: length), as: T.self, threads: threads), batch: batch,
                           weight: p[S4Slot.weight], bias: p[S4Slot.bias])
    }
}

/// The declaration indices of the mixer's parameters.
enum S4Slot {
    static let invDt = 0, aReal = 1, aImag = 2, b = 3, p = 4, c = 5, d = 6, weight = 7, bias = 8
    static let head = OutputStageSlots(d: d, weight: weight, bias: bias)
}
