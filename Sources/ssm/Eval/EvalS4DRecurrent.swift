import ArgumentParser
import SSMKit

/// `ssm eval s4d-recurrent`: the S4D recurrence stepped from a zero state.
struct EvalS4DRecurrent: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4d-recurrent",
        abstract: "Step the S4D recurrence over u from a zero state (equals fftconv(u, K̄) + D·u).",
        discussion: """
        in: the s4d-kernel inputs, u (B, H, L) and optional D (H). out: y (B, H, L).
        """
    )

    @OptionGroup var options: EvalOptions
    @OptionGroup var kernelOptions: S4DKernelOptions
    var length: Int { kernelOptions.length }
    var discretization: Discretization { kernelOptions.discretization }

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let (logDt, c, logAReal, aImag, b) = try readS4DParameters(&inputs)
        let (H, N2) = (c.shape[0], c.shape[1])
        let u = try inputs.required("u", "(B, \(H), \(length))", ranks: [3])
        guard u.shape[1] == H, u.shape[2] == length, u.shape[0] >= 1 else {
            throw SSMError.shape(argument: "u", expected: "(B, \(H), \(length))", actual: u.shape)
        }
        let d = try inputs.optional("D", "(\(H))", ranks: [1])
        if let d { try expectShape(d, "D", [H]) }
        try inputs.finish("log_dt, C, log_A_real, A_imag, optional B, u and optional D")

        let kernel = try S4DKernel<T>(channels: H, modes: N2, discretization: discretization)
        let recurrence = try S4DRecurrence(kernel: kernel, logDt: logDt.scalars, c: complexValues(c),
                                           logAReal: logAReal.scalars, aImag: aImag.scalars,
                                           b: b.map(complexValues), d: d?.scalars)
        var state = try recurrence.makeState(batch: u.shape[0])
        var y = [T](repeating: 0, count: u.count)
        try recurrence.run(&state, u: u.scalars, y: &y, length: length)
        return [("y", .init(Tensor(shape: u.shape, scalars: y)))]
    }
}
