import ArgumentParser
import SSMKit
import SSMTraining

/// `ssm eval mamba`: the Mamba block, scan mode (forward and backward) or step mode.
struct EvalMamba: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "mamba",
        abstract: "The Mamba block (official mamba_simple.Mamba) in scan or step mode.",
        discussion: """
        in: hidden_states (B, L, M); in_proj.weight (2E, M); conv1d.weight (E, 1, K); optional \
        conv1d.bias (E); x_proj.weight (R + 2N, E); dt_proj.weight (E, R); dt_proj.bias (E); \
        A_log (E, N); D (E); out_proj.weight (M, E); optional in_proj.bias (2E) and out_proj.bias \
        (M) (both or neither); optional d_out (B, L, M) in scan mode.
        out: out (B, L, M); with d_out also d_hidden_states and d_<parameter> for every parameter.
        --mode step feeds the tokens one at a time through the inference state from zero.
        """
    )

    enum Mode: String, ExpressibleByArgument { case scan, step }

    @OptionGroup var options: EvalOptions

    @Option(name: .long, help: "scan (whole sequence) or step (token by token).")
    var mode: Mode = .scan

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let hidden = try inputs.required("hidden_states", "(B, L, M)", ranks: [3])
        let (B, L, M) = (hidden.shape[0], hidden.shape[1], hidden.shape[2])
        let inProj = try inputs.required("in_proj.weight", "(2E, \(M))", ranks: [2])
        guard inProj.shape[1] == M, inProj.shape[0] >= 2, inProj.shape[0] % 2 == 0 else {
            throw SSMError.shape(argument: "in_proj.weight", expected: "(2E, \(M))", actual: inProj.shape)
        }
        let E = inProj.shape[0] / 2
        let conv = try inputs.required("conv1d.weight", "(\(E), 1, K)", ranks: [3])
        guard conv.shape[0] == E, conv.shape[1] == 1, conv.shape[2] >= 1 else {
            throw SSMError.shape(argument: "conv1d.weight", expected: "(\(E), 1, K)", actual: conv.shape)
        }
        let aLog = try inputs.required("A_log", "(\(E), N)", ranks: [2])
        guard aLog.shape[0] == E, aLog.shape[1] >= 1 else { throw SSMError.shape(argument: "A_log", expected: "(\(E), N)", actual: aLog.shape) }
        let dtProj = try inputs.required("dt_proj.weight", "(\(E), R)", ranks: [2])
        guard dtProj.shape[0] == E, dtProj.shape[1] >= 1 else {
            throw SSMError.shape(argument: "dt_proj.weight", expected: "(\(E), R)", actual: dtProj.shape)
        }
        let hasBias = inputs.file.entry("in_proj.bias") != nil || inputs.file.entry("out_proj.bias") != nil
        let configuration = try MambaConfiguration(
            modelWidth: M, state: aLog.shape[1], convWidth: conv.shape[2], innerWidth: E, dtRank: dtProj.shape[1],
            convBias: inputs.file.entry("conv1d.bias") != nil, projectionBias: hasBias)
        let mixer = try MambaMixer<T>(configuration: configuration, threads: options.threads)
        var values: [String: [T]] = [:]
        for (name, shape) in configuration.parameterShapes {
            let description = "(\(shape.map(String.init).joined(separator: ", ")))"
            let t = try inputs.required(name, description, ranks: [shape.count])
            try expectShape(t, name, shape)
            if let i = t.scalars.firstIndex(where: { !$0.isFinite }) {
                throw SSMError.value(argument: name, expected: "finite values (element \(i) is \(t.scalars[i]))")
            }
            values[name] = t.scalars
        }
        let parameters = try mixer.parameters { d in values[d.name]! }
        let dOut = try inputs.optional("d_out", "(\(B), \(L), \(M))", ranks: [3])
        if let dOut { try expectShape(dOut, "d_out", hidden.shape) }
        if dOut != nil, mode == .step {
            throw SSMError.option(name: "--mode", expected: "scan for a backward pass (d_out is given; step mode has no backward)")
        }
        try inputs.finish("hidden_states, the Mamba parameters and optional d_out")

        switch mode {
        case .step:
            let out = try mixer.forwardRecurrent(hidden.scalars, batch: B, length: L, parameters: parameters)
            return [("out", .init(Tensor(shape: hidden.shape, scalars: out)))]
        case .scan:
            let (out, activations) = try mixer.forward(hidden.scalars, batch: B, length: L, parameters: parameters)
            var outputs: [(name: String, value: SafeTensorsValue)] = [("out", .init(Tensor(shape: hidden.shape, scalars: out)))]
            if let dOut {
                let (dHidden, g) = try mixer.backward(dOut.scalars, input: hidden.scalars, activations: activations, parameters: parameters)
                outputs.append(("d_hidden_states", .init(Tensor(shape: hidden.shape, scalars: dHidden))))
                for (name, shape) in configuration.parameterShapes {
                    outputs.append(("d_" + name, .init(Tensor(shape: shape, scalars: g[name]))))
                }
            }
            return outputs
        }
    }
}
