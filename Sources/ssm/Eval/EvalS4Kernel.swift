import ArgumentParser
import SSMKit

/// `ssm eval s4-kernel`: the S4 DPLR kernel by Cauchy sums and Woodbury, and its gradients.
struct EvalS4Kernel: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4-kernel",
        abstract: "The S4 DPLR kernel K̄ (official SSMKernelDPLR): Cauchy sums, Woodbury, irfft.",
        discussion: """
        in: inv_dt (H), A_real (S, N2), A_imag (S, N2), B (S, N2, 2), P (R, S, N2, 2), C (C, H, N2, 2).
        optional d_k (C, H, L). out: k (C, H, L); with d_k also d_inv_dt, d_A_real, d_A_imag, d_B, d_P, d_C.
        """
    )

    @OptionGroup var options: EvalOptions
    @OptionGroup var lengthOption: AttunedLengthOption
    var length: Int { lengthOption.length }

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let params = try readS4Parameters(&inputs)
        let (invDt, aReal, aImag, b, p, c) = (params.invDt, params.aReal, params.aImag, params.b, params.p, params.c)
        let (copies, H, S, N2, R) = (c.shape[0], c.shape[1], aReal.shape[0], aReal.shape[1], p.shape[0])
        let dK = try inputs.optional("d_k", "(\(copies), \(H), \(length))", ranks: [3])
        if let dK { try expectShape(dK, "d_k", [copies, H, length]) }
        try inputs.finish("inv_dt, A_real, A_imag, B, P, C and optional d_k")
        let kernel = try params.kernel(T.self)
        var k = [T](repeating: 0, count: copies * H * length)
        let (bc, pc, cc) = (complexValues(b), complexValues(p), complexValues(c))
        try kernel.forward(length: length, invDt: invDt.scalars, aReal: aReal.scalars, aImag: aImag.scalars,
                           b: bc, p: pc, cTilde: cc, k: &k)
        var outputs: [(name: String, value: SafeTensorsValue)] = [("k", .init(Tensor(shape: [copies, H, length], scalars: k)))]
        if let dK {
            var dInvDt = [T](repeating: 0, count: H)
            var dAReal = [T](repeating: 0, count: S * N2), dAImag = dAReal
            var dB = [Complex<T>](repeating: .zero, count: S * N2)
            var dP = [Complex<T>](repeating: .zero, count: R * S * N2)
            var dC = [Complex<T>](repeating: .zero, count: copies * H * N2)
            try kernel.backward(length: length, dK: dK.scalars, invDt: invDt.scalars, aReal: aReal.scalars,
                                aImag: aImag.scalars, b: bc, p: pc, cTilde: cc, dInvDt: &dInvDt, dAReal: &dAReal,
                                dAImag: &dAImag, dB: &dB, dP: &dP, dC: &dC)
            outputs += [("d_inv_dt", .init(Tensor(shape: [H], scalars: dInvDt))),
                        ("d_A_real", .init(Tensor(shape: [S, N2], scalars: dAReal))),
                        ("d_A_imag", .init(Tensor(shape: [S, N2], scalars: dAImag))),
                        ("d_B", .init(realView(dB, shape: b.shape))),
                        ("d_P", .init(realView(dP, shape: p.shape))),
                        ("d_C", .init(realView(dC, shape: c.shape)))]
        }
        return outputs
    }
}

/// `--length L`: the length of the kernel, the sequence and the C̃ attunement (S4 operations).
struct AttunedLengthOption: ParsableArguments {
    @Option(name: .long, help: "Length L (C is C̃ attuned to it).")
    var length: Int

    func validate() throws {
        if length < 1 { throw ValidationError("--length: expected L ≥ 1, got \(length)") }
    }
}
