import ArgumentParser
import SSMKit

/// `ssm bench step`: recurrent-mode (inference) throughput of the fast step engine.
struct BenchStep: ParsableCommand, BenchRows {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time recurrent mode: one token at a time (step) for S4D or S4 in a step mode.",
        discussion: """
        Each row times --tokens calls of StepEngine.step (u: (B, H) → y: (B, H)) and reports the \
        median time per step, tokens per second (B per step), the flops and bytes one step \
        implies and the rates they give. Bytes: each channel's operator (read once per step) \
        plus the state read and written, u and y. S4D uses S4D-Lin; S4 uses HiPPO-LegS in NPLR \
        form, rank 1. --state is N (N/2 complex modes). Also reports the whole-sequence form \
        (StepEngine.run over --tokens steps, rows in parallel) as run_tokens_per_second.
        """
    )

    @OptionGroup var options: BenchOptions

    @Option(name: .long, help: "s4d or s4.") var model: String = "s4d"
    @Option(name: .long, help: "S4 step mode: dense, diagonal or linear.") var stepMode: S4Recurrence.StepMode = .linear
    @Option(name: .long, help: "State size N.") var state: Int = 64
    @Option(name: .long, help: "Steps per timed repeat.") var tokens: Int = 256

    func validate() throws {
        guard model == "s4d" || model == "s4" else { throw ValidationError("--model: expected s4d or s4, got \(model)") }
        guard state >= 2, state % 2 == 0 else { throw ValidationError("--state: expected an even N ≥ 2, got \(state)") }
        guard tokens >= 1 else { throw ValidationError("--tokens: expected a positive count, got \(tokens)") }
    }

    func run() throws {
        try options.forEachRow(header: "op    model mode        B      H    N  precision  step_us   min_us   max_us   tokens/s  MFLOP/step  KB/step  GFLOP/s   GB/s  run_tokens/s", lengths: false, self)
    }

    func row<T: SSMScalar>(_: T.Type, B: Int, H: Int) throws {
        var rng = SplitMix64(seed: 23)
        let d = (0 ..< H).map { _ in T.random(in: -1 ..< 1, using: &rng) }
        let engine: StepEngine<T>
        if model == "s4d" {
            let p = try S4DParameters<T>(channels: H, state: state, initialization: .lin, seed: 24)
            let kernel = try S4DKernel<T>(channels: H, modes: state / 2)
            engine = StepEngine(try S4DRecurrence(kernel: kernel, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, d: d),
                                threads: options.threads)
        } else {
            let m = try SeededS4Model<T>(channels: H, state: state, rng: &rng)
            engine = StepEngine(try m.recurrence(mode: stepMode, length: max(tokens, 1024), skip: d), as: T.self, threads: options.threads)
        }
        let u = (0 ..< B * H).map { _ in T.random(in: -1 ..< 1, using: &rng) }
        var y = [T](repeating: 0, count: B * H)
        var s = try engine.makeState(batch: B)
        let warmup = try seconds { for _ in 0 ..< 8 { try engine.step(&s, u: u, y: &y) } }
        var times: [Double] = []
        for _ in 0 ..< options.repeats {
            times.append(try seconds { for _ in 0 ..< tokens { try engine.step(&s, u: u, y: &y) } } / Double(tokens))
        }
        let t = Timing(times)
        // The whole-sequence form over the same number of steps.
        let uRun = (0 ..< B * H * tokens).map { _ in T.random(in: -1 ..< 1, using: &rng) }
        var yRun = [T](repeating: 0, count: B * H * tokens)
        var sRun = try engine.makeState(batch: B)
        try engine.run(&sRun, u: uRun, y: &yRun, length: tokens)
        var runTimes: [Double] = []
        for _ in 0 ..< options.repeats { runTimes.append(try seconds { try engine.run(&sRun, u: uRun, y: &yRun, length: tokens) }) }
        let runTokens = Double(B * tokens) / Timing(runTimes).median
        let flops = Double(B * H * engine.flopsPerRow)
        let scalar = Double(MemoryLayout<T>.size)
        let bytes = scalar * Double(H * engine.operatorScalarsPerChannel + B * H * (4 * engine.size + 2))
        let mode = model == "s4d" ? "diagonal" : stepMode.rawValue
        if options.json {
            print(jsonLine([("op", "step"), ("model", model), ("step_mode", mode), ("batch", B), ("channels", H), ("state", state),
                            ("length", 1), ("precision", T.precisionName), ("threads", engine.threads), ("seconds", t.median),
                            ("seconds_min", t.min), ("seconds_max", t.max), ("samples_per_second", Double(B * H) / t.median),
                            ("tokens_per_second", Double(B) / t.median), ("flops_per_step", flops), ("bytes_per_step", bytes),
                            ("run_tokens_per_second", runTokens), ("warmup_seconds", warmup)]))
        } else {
            print("step  \(model.padding(to: 5)) \(mode.padding(to: 9)) \(column(B, 4)) \(column(H, 6)) \(column(state, 4))  \(T.precisionName) "
                + "\(column(t.median * 1e6, 8, 1)) \(column(t.min * 1e6, 8, 1)) \(column(t.max * 1e6, 8, 1)) \(column(Double(B) / t.median, 10, 0)) "
                + "\(column(flops / 1e6, 11, 3)) \(column(bytes / 1024, 8, 1)) \(column(flops / t.median / 1e9, 8, 2)) \(column(bytes / t.median / 1e9, 6, 2)) "
                + "\(column(runTokens, 13, 0))")
        }
    }
}

extension BenchStep {
    func measureRow<T: SSMScalar>(_ t: T.Type, B: Int, H: Int, L: Int) throws { try row(t, B: B, H: H) }
}
