import ArgumentParser
import SSMKit
import SSMTraining

/// `ssm bench train`: one training step of a sequence model.
struct BenchTrain: ParsableCommand, BenchRows {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time one training step (forward + loss + backward + AdamW) of a model.",
        discussion: """
        The model is the official example's shape: a linear encoder from 1 feature, --layers \
        pre-norm residual blocks of width --channels (or one per entry of --mixers), mean pooling \
        and a 10-class decoder; \
        cross-entropy loss, gradients zeroed, clipped to norm 1, AdamW. Each row reports the \
        step's median and spread over repeats, and the medians of its three phases; samples per \
        second counts B·L tokens. The first step (plans, allocations) is timed apart as warm-up. \
        The bound is one more step's GEMMs, FFT-convolution transforms and selective scans alone, \
        recorded and replayed with the same shapes, libraries, plans and threads, each repeat \
        timing a step and then the replay (median over the repeats; GEMM blocks all in one \
        parallel section, so a lower bound); ratio = median step / median bound.
        """
    )

    @OptionGroup var options: BenchOptions

    @Option(name: .long, help: "s4d, s4, mamba or mamba2 (default: s4d).") var model: ModelFamily?
    @Option(name: .long, help: "Residual blocks (default: 4).") var layers: Int?
    @Option(name: .long, help: ArgumentHelp("A stack of mixed blocks: one mixer per block, comma-separated (e.g. s4d,mamba); instead of --model and --layers.",
                                            discussion: "When the families differ, the stack takes Mamba's backbone (RMSNorm and a token-major residual stream, which blocks of the other layout read and write through a transpose) unless --backbone says otherwise."))
    var mixers: String?
    @Option(name: .long, help: "With --mixers: s4 (LayerNorm, S4's names) or mamba (RMSNorm, Mamba's names) around the blocks.")
    var backbone: ModelBackbone?
    @Option(name: .long, help: "State size N.") var state: Int = 64
    @Flag(name: .long, inversion: .prefixedNo, help: "Measure the GEMM + FFT + scan bound (recording it allocates; --no-bound for allocation counts).")
    var bound = true

    func validate() throws {
        if mixers != nil {
            if model != nil { throw ValidationError("--model: not with --mixers, which names every block's mixer") }
            if layers != nil { throw ValidationError("--layers: not with --mixers, which has one entry per block") }
        } else if backbone != nil {
            throw ValidationError("--backbone: only with --mixers (a single family takes its own)")
        }
        if let layers, layers < 1 { throw ValidationError("--layers: expected a positive count, got \(layers)") }
        guard state >= 1 else { throw ValidationError("--state: expected a positive N, got \(state)") }
        let families = try blocks()
        if let s4 = families.first(where: { !$0.isSelective }), state % 2 != 0 {
            throw ValidationError("--state: expected an even N for \(s4.rawValue), got \(state)")
        }
    }

    /// The mixer of each block: --mixers, or --layers blocks of --model.
    func blocks() throws -> [ModelFamily] {
        guard let mixers else { return [ModelFamily](repeating: model ?? .s4d, count: layers ?? 4) }
        let names = mixers.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return try names.map { name in
            guard let family = ModelFamily(rawValue: name) else {
                throw ValidationError("--mixers: expected a comma-separated list of s4d, s4, mamba and mamba2, got '\(name)' in '\(mixers)'")
            }
            return family
        }
    }

    func run() throws {
        try options.withWisdom(rows)
    }

    func rows() throws {
        try options.forEachRow(header: "op     model  layers   B      H       L    N  precision  median_ms     min_ms     max_ms  fwd_ms  bwd_ms  adamw_ms  ktokens/s  warmup_ms  bound_ms  gemm_ms  fft_ms  scan_ms  ratio", self)
    }

    func row<T: SSMScalar>(_: T.Type, B: Int, H: Int, L: Int) throws {
        let c = try ModelConfiguration(mixers: try blocks(), width: H, state: state, input: .features(1), output: .pooled(.mean, classes: 10))
        let net: SequenceModel<T>
        if let backbone {
            let threads = options.threads ?? WorkerPool.onlineProcessorCount()
            let mixers: [any SequenceMixer<T>] = try c.mixers.map { family throws(SSMError) in
                try family.makeMixer(T.self, width: H, state: state, threads: threads, effort: options.effort)
            }
            net = try SequenceModel<T>(mixers: mixers, input: c.input, output: c.output, backbone: backbone, threads: threads)
        } else {
            net = try SequenceModel<T>(configuration: c, threads: options.threads, effort: options.effort)
        }
        var parameters = try net.initialParameters(seed: 1)
        var optimizer = AdamW(try AdamW<T>.Hyperparameters(learningRate: 1e-3), layout: parameters)
        var gradients = parameters.zeros()
        var rng = SplitMix64(seed: 2)
        let batch = SequenceBatch(batch: B, length: L, features: (0 ..< B * L).map { _ in Double.random(in: -1 ..< 1, using: &rng) },
                                  targets: (0 ..< B).map { _ in Double(Int.random(in: 0 ..< 10, using: &rng)) })
        var phases: [[Double]] = (0 ..< 3).map { _ in [Double](repeating: 0, count: options.repeats + 1) }
        var timed = 0  // steps timed so far: phases[·][timed] is the next slot (no append, so no allocation per step)
        func step() throws {
            var act: SequenceModel<T>.Activations? = nil
            phases[0][timed] = try seconds { act = try net.forwardInPlace(batch, parameters: parameters) }
            phases[1][timed] = try seconds {
                _ = Loss.crossEntropy.evaluate(act!.outputs, targets: batch.targets, rows: B, classes: 10, into: act!.dOutputs)
                gradients.zero()
                try net.backward(activations: act!, parameters: parameters, gradients: &gradients)
            }
            phases[2][timed] = seconds {
                gradients.clipNorm(maximum: 1)
                optimizer.update(&parameters, gradients: gradients)
            }
            timed = min(timed + 1, options.repeats)
        }
        let warmup = try seconds { try step() }
        // The bound's operations are recorded on one more step; each repeat then times a step and
        // the bound's replay back to back, so that a change in the machine's speed during the run
        // shows in both.
        let recorder = self.bound ? try OperationRecorder.record { try step() }.recorder : nil
        timed = 0
        var times = [Double](repeating: 0, count: options.repeats)
        var bounds = [[Double]](repeating: [Double](repeating: 0, count: options.repeats), count: 3)
        for i in 0 ..< options.repeats {
            times[i] = try seconds { try step() }
            if let recorder {
                bounds[0][i] = recorder.gemmSeconds(threads: net.threads)
                bounds[1][i] = recorder.transformSeconds()
                bounds[2][i] = recorder.scanSeconds()
            }
        }
        let t = Timing(times), p = phases.map { Timing(Array($0.prefix(options.repeats))).median }
        let samples = Double(B * L)
        var (gemm, fft, scan) = (Double.nan, Double.nan, Double.nan)
        var counts = (gemms: 0, transformPhases: 0, scans: 0)
        if let recorder {
            (gemm, fft, scan) = (Timing(bounds[0]).median, Timing(bounds[1]).median, Timing(bounds[2]).median)
            counts = (recorder.counts.gemms, recorder.counts.transformPhases, recorder.counts.scans)
        }
        let bound = gemm + fft + scan
        if options.json {
            print(jsonLine([("op", "train"), ("model", c.mixerDescription), ("backbone", net.backbone.rawValue), ("layers", c.layers), ("batch", B), ("channels", H), ("state", state),
                            ("length", L), ("precision", T.precisionName), ("threads", net.threads), ("seconds", t.median),
                            ("seconds_min", t.min), ("seconds_max", t.max), ("samples_per_second", samples / t.median),
                            ("forward_seconds", p[0]), ("backward_seconds", p[1]), ("optimizer_seconds", p[2]), ("warmup_seconds", warmup),
                            ("bound_seconds", bound), ("bound_gemm_seconds", gemm), ("bound_fft_seconds", fft), ("bound_scan_seconds", scan),
                            ("bound_gemms", counts.gemms), ("bound_transform_phases", counts.transformPhases),
                            ("bound_scans", counts.scans),
                            ("ratio", t.median / bound)]))
        } else {
            print("train  \(c.mixerDescription.padding(to: 5)) \(column(c.layers, 6)) \(column(B, 3)) \(column(H, 6)) \(column(L, 7)) \(column(state, 4))  \(T.precisionName) "
                + "\(column(t.median * 1e3, 10, 1)) \(column(t.min * 1e3, 10, 1)) \(column(t.max * 1e3, 10, 1)) \(column(p[0] * 1e3, 7, 1)) "
                + "\(column(p[1] * 1e3, 7, 1)) \(column(p[2] * 1e3, 9, 1)) \(column(samples / t.median / 1e3, 10, 1)) \(column(warmup * 1e3, 10, 1)) "
                + "\(column(bound * 1e3, 9, 1)) \(column(gemm * 1e3, 8, 1)) \(column(fft * 1e3, 7, 1)) \(column(scan * 1e3, 8, 1)) "
                + "\(column(t.median / bound, 6, 2))")
        }
    }
}

extension BenchTrain {
    func measureRow<T: SSMScalar>(_ t: T.Type, B: Int, H: Int, L: Int) throws { try row(t, B: B, H: H, L: L) }
}
