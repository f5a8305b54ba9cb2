import ArgumentParser
import SSMKit

/// `ssm eval ssd`: Mamba-2's SSD scan, forward and backward.
struct EvalSSD: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssd",
        abstract: "The SSD scan of Mamba-2 (official mamba_chunk_scan_combined), forward and backward (when d_out is given).",
        discussion: """
        in: x (B, L, H, P); dt (B, L, H); A (H); B and C (B, L, G, N) with G dividing H; optional D \
        (H) or (H, P), dt_bias (H), initial_states (B, H, P, N); optional d_out (B, L, H, P) and, \
        with it, d_final_states (B, H, P, N).
        out: out (B, L, H, P), final_states (B, H, P, N); with d_out also d_x, d_dt, d_A, d_B, d_C \
        and d_D, d_dt_bias, d_initial_states for those given: the gradients of \
        Σ d_out ⊙ out + Σ d_final_states ⊙ final_states.
        dt′ = clamp(softplus(dt + dt_bias), --dt-min, --dt-max) (softplus with --dt-softplus).
        """
    )

    @OptionGroup var options: EvalOptions

    @Option(name: .long, help: "Tokens per chunk Q (the official chunk_size).")
    var chunkSize: Int = SSDScan<Float>.defaultChunkLength

    @Flag(name: .long, help: "dt′ ← softplus(dt + dt_bias) (dt + dt_bias itself above 20).")
    var dtSoftplus = false

    @Option(name: .long, help: "Lower clamp of dt′ (the official dt_limit[0]).")
    var dtMin: Double = 0

    @Option(name: .long, help: "Upper clamp of dt′ (the official dt_limit[1]; default: none).")
    var dtMax: Double = .infinity

    func validate() throws {
        if chunkSize < 1 { throw ValidationError("--chunk-size: expected a positive token count, got \(chunkSize)") }
    }

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let x = try inputs.required("x", "(B, L, H, P)", ranks: [4])
        let (B, L, H, P) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let dt = try inputs.required("dt", "(\(B), \(L), \(H))", ranks: [3])
        try expectShape(dt, "dt", [B, L, H])
        let a = try inputs.required("A", "(\(H))", ranks: [1])
        try expectShape(a, "A", [H])
        let bTensor = try inputs.required("B", "(\(B), \(L), G, N)", ranks: [4])
        guard bTensor.shape[0] == B, bTensor.shape[1] == L, bTensor.shape[2] >= 1, H % bTensor.shape[2] == 0, bTensor.shape[3] >= 1 else {
            throw SSMError.shape(argument: "B", expected: "(\(B), \(L), G, N) with G dividing \(H)", actual: bTensor.shape)
        }
        let (G, N) = (bTensor.shape[2], bTensor.shape[3])
        let cTensor = try inputs.required("C", "(\(B), \(L), \(G), \(N))", ranks: [4])
        try expectShape(cTensor, "C", bTensor.shape)
        let d = try inputs.optional("D", "(\(H)) or (\(H), \(P))", ranks: [1, 2])
        if let d, d.shape != [H], d.shape != [H, P] { throw SSMError.shape(argument: "D", expected: "(\(H)) or (\(H), \(P))", actual: d.shape) }
        let bias = try inputs.optional("dt_bias", "(\(H))", ranks: [1])
        if let bias { try expectShape(bias, "dt_bias", [H]) }
        let initial = try inputs.optional("initial_states", "(\(B), \(H), \(P), \(N))", ranks: [4])
        if let initial { try expectShape(initial, "initial_states", [B, H, P, N]) }
        let dOut = try inputs.optional("d_out", "(\(B), \(L), \(H), \(P))", ranks: [4])
        if let dOut { try expectShape(dOut, "d_out", x.shape) }
        let dFinal = try inputs.optional("d_final_states", "(\(B), \(H), \(P), \(N))", ranks: [4])
        if let dFinal {
            try expectShape(dFinal, "d_final_states", [B, H, P, N])
            if dOut == nil { throw SSMError.missing(argument: "d_out", expected: "d_out beside d_final_states (a backward pass takes both)") }
        }
        try inputs.finish("x, dt, A, B, C, optional D, dt_bias, initial_states, d_out and d_final_states")

        let shape = try SSDShape(batch: B, length: L, heads: H, headDimension: P, groups: G, state: N)
        let timeStep = try SSDTimeStep(softplus: dtSoftplus, minimum: dtMin, maximum: dtMax)
        let scan = try SSDScan<T>(shape: shape, chunkLength: chunkSize, timeStep: timeStep, threads: options.threads)
        let values = SSDInputs(x: x.scalars, dt: dt.scalars, a: a.scalars, b: bTensor.scalars, c: cTensor.scalars, d: d?.scalars,
                               dtBias: bias?.scalars, initialStates: initial?.scalars)
        let (out, final) = try scan.forward(values)
        var outputs: [(name: String, value: SafeTensorsValue)] = [
            ("out", .init(Tensor(shape: x.shape, scalars: out))), ("final_states", .init(Tensor(shape: [B, H, P, N], scalars: final))),
        ]
        if let dOut {
            let g = try scan.backward(values, dOut: dOut.scalars, dFinalStates: dFinal?.scalars)
            outputs += [("d_x", .init(Tensor(shape: x.shape, scalars: g.x))), ("d_dt", .init(Tensor(shape: dt.shape, scalars: g.dt))),
                        ("d_A", .init(Tensor(shape: a.shape, scalars: g.a))), ("d_B", .init(Tensor(shape: bTensor.shape, scalars: g.b))),
                        ("d_C", .init(Tensor(shape: cTensor.shape, scalars: g.c)))]
            if let d, let v = g.d { outputs.append(("d_D", .init(Tensor(shape: d.shape, scalars: v)))) }
            if let bias, let v = g.dtBias { outputs.append(("d_dt_bias", .init(Tensor(shape: bias.shape, scalars: v)))) }
            if let initial, let v = g.initialStates { outputs.append(("d_initial_states", .init(Tensor(shape: initial.shape, scalars: v)))) }
        }
        return outputs
    }
}
