import ArgumentParser
import SSMKit

/// `ssm eval s4-recurrent`: the S4 recurrence stepped from a zero state, C recovered from C̃.
struct EvalS4Recurrent: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4-recurrent",
        abstract: "Step the S4 recurrence over u from a zero state (equals fftconv(u, K̄) + D·u).",
        discussion: """
        in: the s4-kernel inputs (C is C̃ attuned to --length), u (B, H, L), optional D (C, H).
        out: y (B, C, H, L).
        """
    )

    @OptionGroup var options: EvalOptions
    @OptionGroup var lengthOption: AttunedLengthOption
    var length: Int { lengthOption.length }

    @Option(name: .long, help: "dense, diagonal or linear.")
    var stepMode: S4Recurrence.StepMode = .linear

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let params = try readS4Parameters(&inputs)
        let (copies, H) = (params.c.shape[0], params.c.shape[1])
        let u = try inputs.required("u", "(B, \(H), \(length))", ranks: [3])
        guard u.shape[1] == H, u.shape[2] == length, u.shape[0] >= 1 else {
            throw SSMError.shape(argument: "u", expected: "(B, \(H), \(length))", actual: u.shape)
        }
        let d = try inputs.optional("D", "(\(copies), \(H))", ranks: [2])
        if let d { try expectShape(d, "D", [copies, H]) }
        try inputs.finish("inv_dt, A_real, A_imag, B, P, C, u and optional D")
        let kernel = try params.kernel(T.self)
        let recurrence = try S4Recurrence(kernel: kernel, mode: stepMode, length: length, invDt: params.invDt.scalars,
                                          aReal: params.aReal.scalars, aImag: params.aImag.scalars, b: complexValues(params.b),
                                          p: complexValues(params.p), cTilde: complexValues(params.c), skip: d?.scalars)
        var state = try recurrence.makeState(batch: u.shape[0])
        var y = [T](repeating: 0, count: u.shape[0] * copies * H * length)
        try recurrence.run(&state, u: u.scalars, y: &y, length: length)
        return [("y", .init(Tensor(shape: [u.shape[0], copies, H, length], scalars: y)))]
    }
}

extension S4Recurrence.StepMode: ExpressibleByArgument {}

/// The S4 parameters of `ssm eval s4-kernel`, shapes checked: inv_dt (H), A_real (S, N2), A_imag (S, N2),
/// B (S, N2, 2), P (R, S, N2, 2), C (C, H, N2, 2).
struct S4ParameterTensors<T: SSMScalar> {
    var invDt: Tensor<T>, aReal: Tensor<T>, aImag: Tensor<T>, b: Tensor<T>, p: Tensor<T>, c: Tensor<T>

    func kernel(_: T.Type) throws -> S4Kernel<T> {
        try S4Kernel<T>(copies: c.shape[0], channels: c.shape[1], ssms: aReal.shape[0], modes: aReal.shape[1], rank: p.shape[0])
    }
}

func readS4Parameters<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> S4ParameterTensors<T> {
    let invDt = try inputs.required("inv_dt", "(H)", ranks: [1])
    let H = invDt.shape[0]
    let aReal = try inputs.required("A_real", "(S, N2)", ranks: [2])
    let (S, N2) = (aReal.shape[0], aReal.shape[1])
    let aImag = try inputs.required("A_imag", "(\(S), \(N2))", ranks: [2])
    try expectShape(aImag, "A_imag", [S, N2])
    let b = try inputs.required("B", "(\(S), \(N2), 2)", ranks: [3])
    try expectShape(b, "B", [S, N2, 2])
    let p = try inputs.required("P", "(R, \(S), \(N2), 2)", ranks: [4])
    try expectShape(p, "P", [p.shape[0], S, N2, 2])
    let c = try inputs.required("C", "(C, \(H), \(N2), 2)", ranks: [4])
    try expectShape(c, "C", [c.shape[0], H, N2, 2])
    return S4ParameterTensors(invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, c: c)
}
