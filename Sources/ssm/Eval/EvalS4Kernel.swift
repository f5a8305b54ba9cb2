import ArgumentParser
import SSMKit

/// `ssm eval s4-kernel`: the S4 DPLR kernel by Cauchy sums and Woodbury (forward only so far).
struct EvalS4Kernel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4-kernel",
        abstract: "The S4 DPLR kernel K̄ (official SSMKernelDPLR): Cauchy sums, Woodbury, irfft.",
        discussion: """
        in: inv_dt (H), A_real (S, N2), A_imag (S, N2), B (S, N2, 2), P (R, S, N2, 2), C (C, H, N2, 2).
        out: k (C, H, L). The backward pass (d_k) is not implemented yet and is refused.
        """
    )

    @OptionGroup var options: EvalOptions

    @Option(name: .long, help: "Kernel length L (C is C̃ attuned to it).")
    var length: Int

    func validate() throws {
        if length < 1 { throw ValidationError("--length: expected L ≥ 1, got \(length)") }
    }

    func run() throws {
        try runEval(options, { try compute(&$0) }, { try compute(&$0) })
    }

    func compute<T: SafeTensorsScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let invDt = try inputs.required("inv_dt", "(H)", ranks: [1])
        let H = invDt.shape[0]
        let aReal = try inputs.required("A_real", "(S, N2)", ranks: [2])
        let (S, N2) = (aReal.shape[0], aReal.shape[1])
        let aImag = try inputs.required("A_imag", "(\(S), \(N2))", ranks: [2])
        try expectShape(aImag, "A_imag", [S, N2])
        let b = try inputs.required("B", "(\(S), \(N2), 2)", ranks: [3])
        try expectShape(b, "B", [S, N2, 2])
        let p = try inputs.required("P", "(R, \(S), \(N2), 2)", ranks: [4])
        let R = p.shape[0]
        try expectShape(p, "P", [R, S, N2, 2])
        let c = try inputs.required("C", "(C, \(H), \(N2), 2)", ranks: [4])
        let copies = c.shape[0]
        try expectShape(c, "C", [copies, H, N2, 2])
        if inputs.file.entry("d_k") != nil {
            throw SSMError.option(name: "d_k", expected: "no d_k: the s4-kernel backward pass is not implemented yet")
        }
        try inputs.finish("inv_dt, A_real, A_imag, B, P and C")
        let kernel = try S4Kernel<T>(copies: copies, channels: H, ssms: S, modes: N2, rank: R)
        var k = [T](repeating: 0, count: copies * H * length)
        try kernel.forward(length: length, invDt: invDt.scalars, aReal: aReal.scalars, aImag: aImag.scalars,
                           b: complexValues(b), p: complexValues(p), cTilde: complexValues(c), k: &k)
        return [("k", .init(Tensor(shape: [copies, H, length], scalars: k)))]
    }
}
