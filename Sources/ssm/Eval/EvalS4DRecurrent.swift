import ArgumentParser
import SSMKit

/// `ssm eval s4d-recurrent`: the S4D recurrence stepped from a zero state.
struct EvalS4DRecurrent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4d-recurrent",
        abstract: "Step the S4D recurrence over u from a zero state (equals fftconv(u, K̄) + D·u).",
        discussion: """
        in: the s4d-kernel inputs, u (B, H, L) and optional D (H). out: y (B, H, L).
        """
    )

    @OptionGroup var options: EvalOptions

    @Option(name: .long, help: "Sequence length L (u's last extent).")
    var length: Int

    @Option(name: .long, help: "zoh or bilinear.")
    var discretization: Discretization = .zoh

    func validate() throws {
        if length < 1 { throw ValidationError("--length: expected L ≥ 1, got \(length)") }
    }

    func run() throws {
        try runEval(options, { try compute(&$0) }, { try compute(&$0) })
    }

    func compute<T: SafeTensorsScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
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
