import ArgumentParser
import SSMKit
import SSMTraining

/// `ssm eval s4d-layer`: the official S4D layer, forward and backward.
struct EvalS4DLayer: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4d-layer",
        abstract: "The S4D layer (official s4d.py S4D): kernel, FFT conv + D, GELU, 1×1 conv, GLU.",
        discussion: """
        in: u (B, H, L); kernel.log_dt (H), kernel.C (H, N2, 2), kernel.log_A_real (H, N2), \
        kernel.A_imag (H, N2), D (H), output_linear.0.weight (2H, H, 1), output_linear.0.bias (2H); \
        optional d_y (B, H, L). out: y (B, H, L); with d_y also d_u and d_<parameter> for each.
        """
    )

    @OptionGroup var options: EvalOptions

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let u = try inputs.required("u", "(B, H, L)", ranks: [3])
        let (B, H, L) = (u.shape[0], u.shape[1], u.shape[2])
        guard B >= 1, H >= 1, L >= 1 else { throw SSMError.shape(argument: "u", expected: "(B, H, L) with positive extents", actual: u.shape) }
        let c = try inputs.required("kernel.C", "(\(H), N2, 2)", ranks: [3])
        guard c.shape[0] == H, c.shape[1] >= 1, c.shape[2] == 2 else {
            throw SSMError.shape(argument: "kernel.C", expected: "(\(H), N2, 2)", actual: c.shape)
        }
        let N2 = c.shape[1]
        let logDt = try inputs.required("kernel.log_dt", "(\(H))", ranks: [1])
        try expectShape(logDt, "kernel.log_dt", [H])
        let logAReal = try inputs.required("kernel.log_A_real", "(\(H), \(N2))", ranks: [2])
        try expectShape(logAReal, "kernel.log_A_real", [H, N2])
        let aImag = try inputs.required("kernel.A_imag", "(\(H), \(N2))", ranks: [2])
        try expectShape(aImag, "kernel.A_imag", [H, N2])
        let d = try inputs.required("D", "(\(H))", ranks: [1])
        try expectShape(d, "D", [H])
        let w = try inputs.required("output_linear.0.weight", "(\(2 * H), \(H), 1)", ranks: [3])
        try expectShape(w, "output_linear.0.weight", [2 * H, H, 1])
        let bias = try inputs.required("output_linear.0.bias", "(\(2 * H))", ranks: [1])
        try expectShape(bias, "output_linear.0.bias", [2 * H])
        let dY = try inputs.optional("d_y", "(\(B), \(H), \(L))", ranks: [3])
        if let dY { try expectShape(dY, "d_y", u.shape) }
        try inputs.finish("u, the S4D layer's parameters and optional d_y")

        let mixer = try S4DMixer<T>(width: H, state: 2 * N2, threads: options.threads)
        let given = ["kernel.log_dt": logDt.scalars, "kernel.C": c.scalars, "kernel.log_A_real": logAReal.scalars,
                     "kernel.A_imag": aImag.scalars, "D": d.scalars, "output_linear.0.weight": w.scalars, "output_linear.0.bias": bias.scalars]
        let p = try mixer.parameters { (declaration: ParameterDeclaration) throws(SSMError) in given[declaration.name]! }
        let (y, activations) = try mixer.forward(u.scalars, batch: B, length: L, parameters: p)
        var outputs: [(name: String, value: SafeTensorsValue)] = [("y", .init(Tensor(shape: u.shape, scalars: y)))]
        if let dY {
            let (dU, g) = try mixer.backward(dY.scalars, input: u.scalars, activations: activations, parameters: p)
            outputs.append(("d_u", .init(Tensor(shape: u.shape, scalars: dU))))
            for name in g.names { outputs.append(("d_" + name, .init(Tensor(shape: g.shapes[name]!, scalars: g[name])))) }
        }
        return outputs
    }
}
