import ArgumentParser
import SSMKit

/// `ssm eval s4d-kernel`: the S4D Vandermonde kernel and its gradients.
struct EvalS4DKernel: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4d-kernel",
        abstract: "The S4D kernel K̄ (official S4DKernel) and, with d_k, its parameter gradients.",
        discussion: """
        in: log_dt (H), C (H, N2, 2), log_A_real (H, N2), A_imag (H, N2), optional B (H, N2, 2), optional d_k (H, L).
        out: k (H, L); with d_k also d_log_dt, d_C, d_log_A_real, d_A_imag (and d_B).
        """
    )

    @OptionGroup var options: EvalOptions
    @OptionGroup var kernelOptions: S4DKernelOptions
    var length: Int { kernelOptions.length }
    var discretization: Discretization { kernelOptions.discretization }

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let (logDt, c, logAReal, aImag, b) = try readS4DParameters(&inputs)
        let (H, N2) = (c.shape[0], c.shape[1])
        let dK = try inputs.optional("d_k", "(\(H), \(length))", ranks: [2])
        if let dK { try expectShape(dK, "d_k", [H, length]) }
        try inputs.finish("log_dt, C, log_A_real, A_imag, optional B and optional d_k")

        let kernel = try S4DKernel<T>(channels: H, modes: N2, discretization: discretization)
        let cc = complexValues(c), bc = b.map(complexValues)
        var k = [T](repeating: 0, count: H * length)
        try kernel.forward(length: length, logDt: logDt.scalars, c: cc, logAReal: logAReal.scalars,
                           aImag: aImag.scalars, b: bc, k: &k)
        var outputs: [(name: String, value: SafeTensorsValue)] = [("k", .init(Tensor(shape: [H, length], scalars: k)))]
        if let dK {
            var dLogDt = [T](repeating: 0, count: H)
            var dC = [Complex<T>](repeating: .zero, count: H * N2)
            var dLogAReal = [T](repeating: 0, count: H * N2)
            var dAImag = [T](repeating: 0, count: H * N2)
            var dB: [Complex<T>]? = b == nil ? nil : [Complex<T>](repeating: .zero, count: H * N2)
            try kernel.backward(length: length, dK: dK.scalars, logDt: logDt.scalars, c: cc, logAReal: logAReal.scalars,
                                aImag: aImag.scalars, b: bc, dLogDt: &dLogDt, dC: &dC, dLogAReal: &dLogAReal,
                                dAImag: &dAImag, dB: &dB)
            outputs += [("d_log_dt", .init(Tensor(shape: [H], scalars: dLogDt))),
                        ("d_C", .init(realView(dC, shape: c.shape))),
                        ("d_log_A_real", .init(Tensor(shape: [H, N2], scalars: dLogAReal))),
                        ("d_A_imag", .init(Tensor(shape: [H, N2], scalars: dAImag)))]
            if let dB { outputs.append(("d_B", .init(realView(dB, shape: c.shape)))) }
        }
        return outputs
    }
}

extension Discretization: ExpressibleByArgument {}

/// The options of the S4D operations: the kernel length and the discretization.
struct S4DKernelOptions: ParsableArguments {
    @Option(name: .long, help: "Kernel length L.")
    var length: Int

    @Option(name: .long, help: "zoh or bilinear.")
    var discretization: Discretization = .zoh

    func validate() throws {
        if length < 1 { throw ValidationError("--length: expected L ≥ 1, got \(length)") }
    }
}

/// The S4D parameters `log_dt` (H), `C` (H, N2, 2), `log_A_real` (H, N2), `A_imag` (H, N2) and
/// optional `B` (H, N2, 2), with their shapes checked.
func readS4DParameters<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws
    -> (logDt: Tensor<T>, c: Tensor<T>, logAReal: Tensor<T>, aImag: Tensor<T>, b: Tensor<T>?) {
    let logDt = try inputs.required("log_dt", "(H)", ranks: [1])
    let H = logDt.shape[0]
    let c = try inputs.required("C", "(\(H), N2, 2)", ranks: [3])
    let N2 = c.shape[1]
    try expectShape(c, "C", [H, N2, 2])
    let logAReal = try inputs.required("log_A_real", "(\(H), \(N2))", ranks: [2])
    try expectShape(logAReal, "log_A_real", [H, N2])
    let aImag = try inputs.required("A_imag", "(\(H), \(N2))", ranks: [2])
    try expectShape(aImag, "A_imag", [H, N2])
    let b = try inputs.optional("B", "(\(H), \(N2), 2)", ranks: [3])
    if let b { try expectShape(b, "B", [H, N2, 2]) }
    return (logDt, c, logAReal, aImag, b)
}

/// Throws unless `tensor` has exactly `shape`.
func expectShape<T>(_ tensor: Tensor<T>, _ name: String, _ shape: [Int]) throws {
    if tensor.shape != shape {
        throw SSMError.shape(argument: name, expected: "(\(shape.map(String.init).joined(separator: ", ")))", actual: tensor.shape)
    }
}

/// The complex values of a (…, 2) real view (torch.view_as_real layout).
func complexValues<T: SSMScalar>(_ t: Tensor<T>) -> [Complex<T>] { complexArray(t.scalars) }

/// A (…, 2) real view of complex values.
func realView<T: SSMScalar>(_ z: [Complex<T>], shape: [Int]) -> Tensor<T> {
    Tensor(shape: shape, scalars: interleaved(z))
}
