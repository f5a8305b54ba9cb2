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

    /// The layer's parameters (complex C as Complex<T>, W as (2H, H) row-major).
    public struct Parameters: Sendable {
        public var logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], d: [T], weight: [T], bias: [T]
        public init(logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], d: [T], weight: [T], bias: [T]) {
            (self.logDt, self.c, self.logAReal, self.aImag, self.d, self.weight, self.bias) = (logDt, c, logAReal, aImag, d, weight, bias)
        }
    }

    /// What the forward pass keeps for the backward pass.
    public struct Activations: Sendable {
        let batch: Int, length: Int
        let u: [T], k: [T], z: [T], g: [T], a: [T]
    }

    public init(channels: Int, modes: Int, threads: Int? = nil) throws(SSMError) {
        guard channels >= 1, modes >= 1 else {
            throw SSMError.value(argument: "channels, modes", expected: "positive counts, got (\(channels), \(modes))")
        }
        self.channels = channels
        self.modes = modes
        self.threads = threads ?? onlineProcessorCount()
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
    public func forward(_ u: [T], batch B: Int, length L: Int, parameters p: Parameters) throws(SSMError) -> (y: [T], activations: Activations) {
        try check(p)
        let H = channels
        if u.count != B * H * L { throw SSMError.shape(argument: "u", expected: "(B, H, L) = (\(B), \(H), \(L))", actual: [u.count]) }
        let kernel = try S4DKernel<T>(channels: H, modes: modes, discretization: .zoh, threads: threads)
        var k = [T](repeating: 0, count: H * L)
        try kernel.forward(length: L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, k: &k)
        let conv = try FFTConvolution<T>(shape: ConvolutionShape(batch: B, channels: H, length: L), threads: threads)
        var z = [T](repeating: 0, count: B * H * L)
        try conv.forward(u: u, kernel: k, skip: p.d, y: &z)
        let g = z.map(gelu)
        var a = [T](repeating: 0, count: B * 2 * H * L), y = [T](repeating: 0, count: B * H * L)
        for b in 0 ..< B {
            pointwiseLinear(p.weight, p.bias, input: g, inputOffset: b * H * L, rows: 2 * H, cols: H, length: L,
                            output: &a, outputOffset: b * 2 * H * L)
            for i in 0 ..< H * L {
                let (first, second) = (a[b * 2 * H * L + i], a[b * 2 * H * L + H * L + i])
                y[b * H * L + i] = first * sigmoid(second)
            }
        }
        return (y, Activations(batch: B, length: L, u: u, k: k, z: z, g: g, a: a))
    }

    /// Gradients of Σ dY ⊙ y: dU (B, H, L) and every parameter.
    public func backward(dY: [T], activations act: Activations, parameters p: Parameters) throws(SSMError) -> (dU: [T], dParameters: Parameters) {
        try check(p)
        let (B, H, L, N2) = (act.batch, channels, act.length, modes)
        if dY.count != B * H * L { throw SSMError.shape(argument: "d_y", expected: "(B, H, L) = (\(B), \(H), \(L))", actual: [dY.count]) }
        // GLU.
        var dA = [T](repeating: 0, count: B * 2 * H * L)
        for b in 0 ..< B {
            for i in 0 ..< H * L {
                let (first, second) = (act.a[b * 2 * H * L + i], act.a[b * 2 * H * L + H * L + i])
                let s = sigmoid(second), d = dY[b * H * L + i]
                dA[b * 2 * H * L + i] = d * s
                dA[b * 2 * H * L + H * L + i] = d * first * s * (1 - s)
            }
        }
        // 1×1 convolution: a_b = W g_b + bias.
        var dW = [T](repeating: 0, count: 2 * H * H), dBias = [T](repeating: 0, count: 2 * H)
        var dG = [T](repeating: 0, count: B * H * L)
        for b in 0 ..< B {
            for o in 0 ..< 2 * H {
                var sum: T = 0
                for t in 0 ..< L { sum += dA[(b * 2 * H + o) * L + t] }
                dBias[o] += sum
            }
            for o in 0 ..< 2 * H {
                for i in 0 ..< H {
                    var sum: T = 0
                    for t in 0 ..< L { sum += dA[(b * 2 * H + o) * L + t] * act.g[(b * H + i) * L + t] }
                    dW[o * H + i] += sum
                }
            }
            for i in 0 ..< H {
                for o in 0 ..< 2 * H {
                    let w = p.weight[o * H + i]
                    for t in 0 ..< L { dG[(b * H + i) * L + t] += w * dA[(b * 2 * H + o) * L + t] }
                }
            }
        }
        // GELU.
        let dZ = zip(dG, act.z).map { $0 * geluDerivative($1) }
        // Convolution with D, then the kernel.
        let conv = try FFTConvolution<T>(shape: ConvolutionShape(batch: B, channels: H, length: L), threads: threads)
        var dU: [T]? = [T](repeating: 0, count: B * H * L), dK: [T]? = [T](repeating: 0, count: H * L)
        var dD: [T]? = [T](repeating: 0, count: H)
        try conv.backward(dY: dZ, u: act.u, kernel: act.k, skip: p.d, dU: &dU, dK: &dK, dD: &dD)
        let kernel = try S4DKernel<T>(channels: H, modes: N2, discretization: .zoh, threads: threads)
        var dLogDt = [T](repeating: 0, count: H), dLogAReal = [T](repeating: 0, count: H * N2), dAImag = dLogAReal
        var dC = [Complex<T>](repeating: .zero, count: H * N2)
        var dB: [Complex<T>]? = nil
        try kernel.backward(length: L, dK: dK!, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag,
                            dLogDt: &dLogDt, dC: &dC, dLogAReal: &dLogAReal, dAImag: &dAImag, dB: &dB)
        return (dU!, Parameters(logDt: dLogDt, c: dC, logAReal: dLogAReal, aImag: dAImag, d: dD!, weight: dW, bias: dBias))
    }
}

/// out[o, t] = Σ_i w[o, i]·x[i, t] + bias[o] for one (cols, L) input block.
func pointwiseLinear<T: FFTScalar>(_ w: [T], _ bias: [T], input x: [T], inputOffset: Int, rows: Int, cols: Int, length L: Int,
                                   output: inout [T], outputOffset: Int) {
    for o in 0 ..< rows {
        for t in 0 ..< L { output[outputOffset + o * L + t] = bias[o] }
        for i in 0 ..< cols {
            let wi = w[o * cols + i]
            for t in 0 ..< L { output[outputOffset + o * L + t] += wi * x[inputOffset + i * L + t] }
        }
    }
}

/// GELU, the exact form: v·Φ(v) = v/2·(1 + erf(v/√2)).
@inlinable
public func gelu<T: FFTScalar>(_ v: T) -> T { v / 2 * (1 + T.erf(v / T(2).squareRoot())) }

/// GELU′(v) = Φ(v) + v·φ(v).
@inlinable
public func geluDerivative<T: FFTScalar>(_ v: T) -> T {
    let phi = T.exp(-v * v / 2) / (2 * T.pi).squareRoot()
    return (1 + T.erf(v / T(2).squareRoot())) / 2 + v * phi
}

/// The logistic function.
@inlinable
public func sigmoid<T: FFTScalar>(_ v: T) -> T { 1 / (1 + T.exp(-v)) }
