import SSMKit

/// The S4D layer of the official `S4D` module (state-spaces/s4 models/s4/s4d.py) as a
/// ``SequenceMixer``. Legend: B batch · H channels · N2 = N/2 complex modes · L length;
/// channel-major, u: (B, H, L).
///
///     k = S4DKernel(log_dt, C, log_A_real, A_imag)            (H, L), ZOH
///     y = GatedConvolution(u, k, D, W, b)                      FFT conv + D, GELU, 1×1 conv, GLU
///
/// Parameters (official names): `kernel.log_dt` (H), `kernel.C` (H, N2, 2), `kernel.log_A_real`
/// (H, N2), `kernel.A_imag` (H, N2), `D` (H), `output_linear.0.weight` (2H, H, 1),
/// `output_linear.0.bias` (2H). The initialization is the official one: Δ log-uniform in
/// [0.001, 0.1], C complex normal, A by `S4DInitialization` (S4D-Lin by default), D standard
/// normal, the 1×1 convolution PyTorch's U(±1/√H). Step mode runs `S4DRecurrence`.
public final class S4DMixer<T: SSMScalar>: GatedConvolutionMixer, @unchecked Sendable {
    public typealias Scalar = T
    public let width: Int
    public let modes: Int
    public let threads: Int
    public let initialization: S4DInitialization
    public var layout: SequenceLayout { .channelMajor }
    public let parameterDeclarations: [ParameterDeclaration]
    let kernel: S4DKernel<T>
    /// The output stage (D, GELU, the 1×1 convolution, the GLU) and its step mode.
    public let head: GatedConvolution<T>


    /// - Throws: `SSMError` for non-positive sizes, an odd state size, or S4D-LegS (whose
    ///   B ≠ 1 the official S4D layer has no parameter for).
    public init(width H: Int, state N: Int, initialization: S4DInitialization = .lin, threads: Int? = nil,
                effort: FFTPlannerEffort? = nil) throws(SSMError) {
        guard H >= 1 else { throw SSMError.value(argument: "width", expected: "a positive count, got \(H)") }
        let (realPart, imagPart, b) = try initialization.modes(state: N)
        guard b == nil else { throw SSMError.value(argument: "initialization", expected: "lin, inv or real (B = 1), got \(initialization)") }
        let N2 = N / 2
        (width, modes, self.initialization) = (H, N2, initialization)
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        kernel = try S4DKernel<T>(channels: H, modes: N2, discretization: .zoh, threads: self.threads)
        head = GatedConvolution<T>(channels: H, threads: self.threads, effort: effort)
        let fanIn = 1 / Double(H).squareRoot()
        parameterDeclarations = [
            ParameterDeclaration("kernel.log_dt", shape: [H], group: .ssm,
                                 initialization: .custom { rng, count in rng.logTimeSteps(count: count) }),
            ParameterDeclaration("kernel.C", shape: [H, N2, 2], initialization: .custom { rng, count in
                (0 ..< count / 2).flatMap { _ in
                    let (x, y) = rng.nextStandardNormalPair()
                    return [x * 0.5.squareRoot(), y * 0.5.squareRoot()]
                }
            }),
            ParameterDeclaration("kernel.log_A_real", shape: [H, N2], group: .ssm,
                                 initialization: .custom { _, count in (0 ..< count).map { Double.log(realPart[$0 % N2]) } }),
            ParameterDeclaration("kernel.A_imag", shape: [H, N2], group: .ssm,
                                 initialization: .custom { _, count in (0 ..< count).map { imagPart[$0 % N2] } }),
            ParameterDeclaration("D", shape: [H], initialization: .normal(deviation: 1)),
            ParameterDeclaration("output_linear.0.weight", shape: [2 * H, H, 1], initialization: .uniform(bound: fanIn)),
            ParameterDeclaration("output_linear.0.bias", shape: [2 * H], initialization: .uniform(bound: fanIn)),
        ]
    }

    /// The head's buffers and the kernel's parameters and gradients as the kernel takes them.
    public final class Activations {
        let head: GatedConvolution<T>.Activations
        var logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T]
        var dLogDt: [T], dC: [Complex<T>], dLogAReal: [T], dAImag: [T]

        init(head: GatedConvolution<T>.Activations, channels H: Int, modes N2: Int) {
            self.head = head
            logDt = [T](repeating: 0, count: H)
            logAReal = [T](repeating: 0, count: H * N2)
            (aImag, dLogAReal, dAImag, dLogDt) = (logAReal, logAReal, logAReal, logDt)
            c = [Complex<T>](repeating: .zero, count: H * N2)
            dC = c
        }

        /// Copies the kernel's parameters out of the flat buffer (no allocation).
        func load(_ p: ParameterView<T>) {
            p.copy(S4DSlot.logDt, into: &logDt)
            p.copy(S4DSlot.logAReal, into: &logAReal)
            p.copy(S4DSlot.aImag, into: &aImag)
            p.copy(S4DSlot.c, into: &c)
        }
    }

    public func makeActivations(batch: Int, length: Int) throws(SSMError) -> Activations {
        Activations(head: try head.makeActivations(batch: batch, length: length), channels: width, modes: modes)
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>, activations act: Activations,
                        residual: UnsafePointer<T>?, into y: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        try head.check(u.count, "u", act.head)
        act.load(p)
        try kernel.forward(length: act.head.length, logDt: act.logDt, c: act.c, logAReal: act.logAReal, aImag: act.aImag, k: &act.head.kernel)
        try head.forward(u, parameters: p, slots: S4DSlot.head, activations: act.head, residual: residual, into: y)
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(_ dY: UnsafeBufferPointer<T>, input u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>,
                         activations act: Activations, dInput: UnsafeMutableBufferPointer<T>, gradients g: GradientView<T>) throws(SSMError) {
        let L = act.head.length
        try head.backward(dY, input: u, parameters: p, slots: S4DSlot.head, activations: act.head, dInput: dInput, gradients: g)
        for i in act.dLogDt.indices { act.dLogDt[i] = 0 }
        for i in act.dLogAReal.indices { (act.dLogAReal[i], act.dAImag[i], act.dC[i]) = (0, 0, .zero) }
        var none: [Complex<T>]? = nil
        try kernel.backward(length: L, dK: act.head.dKernel, logDt: act.logDt, c: act.c, logAReal: act.logAReal, aImag: act.aImag,
                            dLogDt: &act.dLogDt, dC: &act.dC, dLogAReal: &act.dLogAReal, dAImag: &act.dAImag, dB: &none)
        g.accumulate(S4DSlot.logDt, act.dLogDt)
        g.accumulate(S4DSlot.logAReal, act.dLogAReal)
        g.accumulate(S4DSlot.aImag, act.dAImag)
        g.accumulate(S4DSlot.c, act.dC)
    }

    /// The recurrence of this layer's kernel (with D).
    func recurrence(_ p: ParameterView<T>) throws(SSMError) -> S4DRecurrence<T> {
        let c = p[S4DSlot.c]
        return try S4DRecurrence<T>(kernel: kernel, logDt: p.array(S4DSlot.logDt), c: (0 ..< modes * width).map { Complex(c[2 * $0], c[2 * $0 + 1]) },
                                    logAReal: p.array(S4DSlot.logAReal), aImag: p.array(S4DSlot.aImag), d: p.array(S4DSlot.d))
    }

    public typealias State = GatedConvolution<T>.RecurrentState

    public func makeState(batch: Int, length: Int, parameters p: ParameterView<T>) throws(SSMError) -> State {
        try head.makeState(engine: StepEngine(try recurrence(p), threads: threads), batch: batch, weight: p[S4DSlot.weight], bias: p[S4DSlot.bias])
    }
}

/// The declaration indices of the mixer's parameters.
enum S4DSlot {
    static let logDt = 0, c = 1, logAReal = 2, aImag = 3, d = 4, weight = 5, bias = 6
    static let head = OutputStageSlots(d: d, weight: weight, bias: bias)
}
