import ArgumentParser
import SSMKit
import SSMTraining

/// How `ssm eval mamba` and `ssm eval mamba2` run their block.
enum BlockMode: String, ExpressibleByArgument { case scan, step }

/// The part of `ssm eval mamba|mamba2` after the block is made: reads every parameter the
/// mixer declares (its official name and shape, finite values), an optional d_out, and runs
/// scan mode (with backward when d_out is given) or step mode on hidden_states (B, L, M).
func evaluateBlock<Mixer: SequenceMixer>(_ mixer: Mixer, hidden: Tensor<Mixer.Scalar>, mode: BlockMode,
                                         inputs: inout EvalInputs<Mixer.Scalar>,
                                         family: String) throws -> [(name: String, value: SafeTensorsValue)] {
    let (B, L, M) = (hidden.shape[0], hidden.shape[1], hidden.shape[2])
    var values: [String: [Mixer.Scalar]] = [:]
    for d in mixer.parameterDeclarations {
        let t = try inputs.required(d.name, "(\(d.shape.map(String.init).joined(separator: ", ")))", ranks: [d.shape.count])
        try expectShape(t, d.name, d.shape)
        if let i = t.scalars.firstIndex(where: { !$0.isFinite }) {
            throw SSMError.value(argument: d.name, expected: "finite values (element \(i) is \(t.scalars[i]))")
        }
        values[d.name] = t.scalars
    }
    let parameters = try mixer.parameters { d in values[d.name]! }
    let dOut = try inputs.optional("d_out", "(\(B), \(L), \(M))", ranks: [3])
    if let dOut { try expectShape(dOut, "d_out", hidden.shape) }
    if dOut != nil, mode == .step {
        throw SSMError.option(name: "--mode", expected: "scan for a backward pass (d_out is given; step mode has no backward)")
    }
    try inputs.finish("hidden_states, the \(family) parameters and optional d_out")

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
            for d in mixer.parameterDeclarations { outputs.append(("d_" + d.name, .init(Tensor(shape: d.shape, scalars: g[d.name])))) }
        }
        return outputs
    }
}
