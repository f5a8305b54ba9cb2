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

    @OptionGroup var options: EvalOptions

    @Option(name: .long, help: "scan (whole sequence) or step (token by token).")
    var mode: BlockMode = .scan

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let hidden = try inputs.required("hidden_states", "(B, L, M)", ranks: [3])
        let M = hidden.shape[2]
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
        return try evaluateBlock(mixer, hidden: hidden, mode: mode, inputs: &inputs, family: "Mamba")
    }
}
