import ArgumentParser
import SSMKit

/// `ssm eval selective-scan`: the S6 scan of Mamba, forward and backward.
struct EvalSelectiveScan: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "selective-scan",
        abstract: "The selective scan (official selective_scan_ref), forward and backward (when d_out is given).",
        discussion: """
        in: u, delta (B, D, L); A (D, N); B and C each (D, N), (B, N, L) or (B, G, N, L); optional \
        D (D), z (B, D, L), delta_bias (D), initial_state (B, D, N); optional d_out (B, D, L).
        out: out (B, D, L), last_state (B, D, N); with d_out also d_u, d_delta, d_A, d_B, d_C and \
        d_D, d_z, d_delta_bias, d_initial_state for those given. No gradient flows from last_state.
        """
    )

    @OptionGroup var options: EvalOptions

    @Flag(name: .long, help: "delta ← softplus(delta + delta_bias) (x itself above 20).")
    var deltaSoftplus = false

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let u = try inputs.required("u", "(B, D, L)", ranks: [3])
        let (B, D, L) = (u.shape[0], u.shape[1], u.shape[2])
        let delta = try inputs.required("delta", "(\(B), \(D), \(L))", ranks: [3])
        try expectShape(delta, "delta", u.shape)
        let a = try inputs.required("A", "(\(D), N)", ranks: [2])
        guard a.shape[0] == D, a.shape[1] >= 1 else { throw SSMError.shape(argument: "A", expected: "(\(D), N)", actual: a.shape) }
        let N = a.shape[1]
        let bTensor = try projection(&inputs, "B", B: B, D: D, N: N, L: L)
        let cTensor = try projection(&inputs, "C", B: B, D: D, N: N, L: L)
        let d = try inputs.optional("D", "(\(D))", ranks: [1])
        if let d { try expectShape(d, "D", [D]) }
        let z = try inputs.optional("z", "(\(B), \(D), \(L))", ranks: [3])
        if let z { try expectShape(z, "z", u.shape) }
        let bias = try inputs.optional("delta_bias", "(\(D))", ranks: [1])
        if let bias { try expectShape(bias, "delta_bias", [D]) }
        let initial = try inputs.optional("initial_state", "(\(B), \(D), \(N))", ranks: [3])
        if let initial { try expectShape(initial, "initial_state", [B, D, N]) }
        let dOut = try inputs.optional("d_out", "(\(B), \(D), \(L))", ranks: [3])
        if let dOut { try expectShape(dOut, "d_out", u.shape) }
        try inputs.finish("u, delta, A, B, C, optional D, z, delta_bias, initial_state and d_out")

        let shape = try SelectiveScanShape(batch: B, channels: D, state: N, length: L, b: bTensor.layout, c: cTensor.layout)
        let scan = try SelectiveScan<T>(shape: shape, deltaSoftplus: deltaSoftplus, threads: options.threads)
        let x = SelectiveScanInputs(u: u.scalars, delta: delta.scalars, a: a.scalars, b: bTensor.tensor.scalars,
                                    c: cTensor.tensor.scalars, d: d?.scalars, z: z?.scalars, deltaBias: bias?.scalars,
                                    initialState: initial?.scalars)
        let (out, last) = try scan.forward(x)
        var outputs: [(name: String, value: SafeTensorsValue)] = [
            ("out", .init(Tensor(shape: u.shape, scalars: out))), ("last_state", .init(Tensor(shape: [B, D, N], scalars: last))),
        ]
        if let dOut {
            let g = try scan.backward(x, dOut: dOut.scalars)
            outputs += [("d_u", .init(Tensor(shape: u.shape, scalars: g.u))), ("d_delta", .init(Tensor(shape: u.shape, scalars: g.delta))),
                        ("d_A", .init(Tensor(shape: a.shape, scalars: g.a))),
                        ("d_B", .init(Tensor(shape: bTensor.tensor.shape, scalars: g.b))),
                        ("d_C", .init(Tensor(shape: cTensor.tensor.shape, scalars: g.c)))]
            if let d, let v = g.d { outputs.append(("d_D", .init(Tensor(shape: d.shape, scalars: v)))) }
            if let z, let v = g.z { outputs.append(("d_z", .init(Tensor(shape: z.shape, scalars: v)))) }
            if let bias, let v = g.deltaBias { outputs.append(("d_delta_bias", .init(Tensor(shape: bias.shape, scalars: v)))) }
            if let initial, let v = g.initialState { outputs.append(("d_initial_state", .init(Tensor(shape: initial.shape, scalars: v)))) }
        }
        return outputs
    }

    /// B or C: (D, N) time-invariant, (B, N, L), or (B, G, N, L) with G dividing D.
    func projection<T: SSMScalar>(_ inputs: inout EvalInputs<T>, _ name: String, B: Int, D: Int, N: Int,
                                          L: Int) throws -> (tensor: Tensor<T>, layout: SelectiveProjection) {
        let expected = "(\(D), \(N)), (\(B), \(N), \(L)) or (\(B), G, \(N), \(L)) with G dividing \(D)"
        let t = try inputs.required(name, expected, ranks: [2, 3, 4])
        switch t.shape.count {
        case 2 where t.shape == [D, N]: return (t, .timeInvariant)
        case 3 where t.shape == [B, N, L]: return (t, .inputDependent(groups: 1))
        case 4 where t.shape[0] == B && t.shape[2] == N && t.shape[3] == L && t.shape[1] >= 1 && D % t.shape[1] == 0:
            return (t, .inputDependent(groups: t.shape[1]))
        default: throw SSMError.shape(argument: name, expected: expected, actual: t.shape)
        }
    }
}
