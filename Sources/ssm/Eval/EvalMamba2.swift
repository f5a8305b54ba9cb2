import ArgumentParser
import SSMKit
import SSMTraining

/// `ssm eval mamba2`: the Mamba-2 block, scan mode (forward and backward) or step mode.
struct EvalMamba2: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "mamba2",
        abstract: "The Mamba-2 block (official mamba2.Mamba2, transformers Mamba2Mixer) in scan or step mode.",
        discussion: """
        in: hidden_states (B, L, M); in_proj.weight (2E + 2GN + H, M), rows [z, x, B, C, dt]; \
        conv1d.weight (E + 2GN, 1, K); optional conv1d.bias (E + 2GN); dt_bias, A_log, D (H); \
        norm.weight (E); out_proj.weight (M, E); optional in_proj.bias and out_proj.bias (both or \
        neither); optional d_out (B, L, M) in scan mode. H comes from A_log, E from out_proj, N \
        from the rest and --groups.
        out: out (B, L, M); with d_out also d_hidden_states and d_<parameter> for every parameter.
        --mode step feeds the tokens one at a time through the inference state from zero.
        """
    )

    @OptionGroup var options: EvalOptions

    @Option(name: .long, help: "scan (whole sequence, chunked) or step (token by token).")
    var mode: BlockMode = .scan

    @Option(name: .long, help: "G, the groups of B and C (official ngroups).")
    var groups: Int = 1

    @Option(name: .long, help: "Tokens per chunk of the SSD scan (official chunk_size).")
    var chunkSize: Int = 256

    @Option(name: .long, help: "ε of the gated RMSNorm.")
    var normEpsilon: Double = 1e-5

    @Option(name: .long, help: "Lower clamp of dt′ (official dt_limit[0]).")
    var dtMin: Double = 0

    @Option(name: .long, help: "Upper clamp of dt′ (official dt_limit[1]; default: none).")
    var dtMax: Double = .infinity

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let hidden = try inputs.required("hidden_states", "(B, L, M)", ranks: [3])
        let M = hidden.shape[2]
        let aLog = try inputs.required("A_log", "(H)", ranks: [1])
        let H = aLog.shape[0]
        let outProj = try inputs.required("out_proj.weight", "(\(M), E)", ranks: [2])
        guard outProj.shape[0] == M, outProj.shape[1] >= 1 else { throw SSMError.shape(argument: "out_proj.weight", expected: "(\(M), E)", actual: outProj.shape) }
        let E = outProj.shape[1]
        guard H >= 1, E % H == 0 else { throw SSMError.shape(argument: "A_log", expected: "(H) with H dividing E = \(E)", actual: aLog.shape) }
        guard groups >= 1 else { throw SSMError.option(name: "--groups", expected: "a positive count, got \(groups)") }
        let conv = try inputs.required("conv1d.weight", "(E + 2GN, 1, K)", ranks: [3])
        let twoGN = conv.shape[0] - E
        guard conv.shape[1] == 1, conv.shape[2] >= 1, twoGN > 0, twoGN % (2 * groups) == 0 else {
            throw SSMError.shape(argument: "conv1d.weight", expected: "(\(E) + 2·\(groups)·N, 1, K)", actual: conv.shape)
        }
        // Before the range is built: a NaN bound would trap it (--dt-min) or empty it (--dt-max).
        guard !dtMin.isNaN, dtMin >= 0 else { throw SSMError.option(name: "--dt-min", expected: "a number ≥ 0, got \(dtMin)") }
        guard !dtMax.isNaN, dtMax >= dtMin else { throw SSMError.option(name: "--dt-max", expected: "at least --dt-min = \(dtMin), got \(dtMax)") }
        let hasBias = inputs.file.entry("in_proj.bias") != nil || inputs.file.entry("out_proj.bias") != nil
        let configuration = try Mamba2Configuration(
            modelWidth: M, state: twoGN / (2 * groups), convWidth: conv.shape[2], innerWidth: E, headDimension: E / H, groups: groups,
            chunkLength: chunkSize, convBias: inputs.file.entry("conv1d.bias") != nil, projectionBias: hasBias, normEpsilon: normEpsilon,
            timeStepLimit: dtMin ... dtMax)
        let mixer = try Mamba2Mixer<T>(configuration: configuration, threads: options.threads)
        return try evaluateBlock(mixer, hidden: hidden, mode: mode, inputs: &inputs, family: "Mamba-2")
    }
}
