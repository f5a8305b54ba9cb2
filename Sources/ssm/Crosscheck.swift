import ArgumentParser
import SSMKit
import SSMTraining

/// `ssm crosscheck`: convolution mode against recurrent mode on the same input.
struct Crosscheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model in convolution mode and in recurrent mode on one input and compare.",
        discussion: """
        With --checkpoint the parameters come from a safetensors file holding the inputs of \
        `ssm eval s4d-kernel` (--model s4d) or `ssm eval s4-kernel` (--model s4, C̃ attuned to \
        --length, one output copy), plus an optional D (H); --channels and --state are then \
        read from it. Convolution mode generates the kernel K̄ (S4D: Vandermonde; S4: Cauchy + Woodbury with C̃ \
        attuned to --length) and applies it with the FFT convolution, D included. Recurrent mode \
        steps the same parameters from a zero state (S4: C recovered from C̃). Prints the max \
        absolute and relative error (relative to max |y|), the error in each eighth of the \
        sequence, both modes' throughput, and the tolerance; exits 1 when the error exceeds it. \
        --model mamba or mamba2: a block of width --channels (Mamba-2: heads of --head-dim, \
        --groups, chunks of --chunk-size) with the official initialization from --seed, in scan \
        mode (the selective scan, or the chunked SSD scan) against step mode from a zero state.
        """
    )

    @Option(name: .long, help: "s4d, s4, mamba or mamba2.") var model: String = "s4d"
    @Option(name: .long, help: "S4D init: lin, inv, legs or real (S4 always starts from HiPPO-LegS).") var initialization: S4DInitialization = .lin
    @Option(name: .long, help: "S4 step mode: dense, diagonal or linear.") var stepMode: S4Recurrence.StepMode = .linear
    @Option(name: .long, help: "Sequence length L.") var length: Int = 4096
    @Option(name: .long, help: "Batch size B.") var batch: Int = 2
    @Option(name: .long, help: "Channels H (Mamba, Mamba-2: the model width M).") var channels: Int = 4
    @Option(name: .long, help: "State size N (even for S4 and S4D).") var state: Int = 64
    @Option(name: .long, help: "Mamba-2 head dimension P (default: the largest divisor of 2M that is at most min(64, 2M/8)).") var headDim: Int?
    @Option(name: .long, help: "Mamba-2 groups G of B and C.") var groups: Int = 1
    @Option(name: .long, help: "Mamba-2 chunk length Q of the SSD scan.") var chunkSize: Int = 256
    @Option(name: .long, help: "float32 or float64.") var precision: Precision = .float64
    @Option(name: .long, help: "Seed of the parameters and the input.") var seed: UInt64 = 0
    @Option(name: .long, help: "Relative tolerance (default 1e-10 in float64, 1e-4 in float32).") var tolerance: Double?
    @Option(name: .long, help: "A safetensors file of the model's parameters (the tensor names of ssm eval s4d-kernel or s4-kernel, optional D) instead of a seeded random model.") var checkpoint: String?
    @Flag(name: .long, help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard ["s4d", "s4", "mamba", "mamba2"].contains(model) else { throw ValidationError("--model: expected s4d, s4, mamba or mamba2, got \(model)") }
        for (name, v) in [("--length", length), ("--batch", batch), ("--channels", channels), ("--state", state), ("--groups", groups),
                          ("--chunk-size", chunkSize), ("--head-dim", headDim ?? 1)] where v < 1 {
            throw ValidationError("\(name): expected a positive value, got \(v)")
        }
        if model.hasPrefix("s4") { guard state % 2 == 0 else { throw ValidationError("--state: expected an even N ≥ 2, got \(state)") } }
        if model.hasPrefix("mamba"), checkpoint != nil { throw ValidationError("--checkpoint: for s4d and s4 only") }
        if model != "mamba2", headDim != nil || groups != 1 || chunkSize != 256 {
            throw ValidationError("--head-dim, --groups and --chunk-size: for --model mamba2 only")
        }
        if let tolerance, !(tolerance > 0) { throw ValidationError("--tolerance: expected a positive number, got \(tolerance)") }
        if model.hasPrefix("mamba"), initialization != .lin || stepMode != .linear {
            throw ValidationError("--initialization and --step-mode: for --model s4d and s4 only")
        }
        if model == "s4d", stepMode != .linear { throw ValidationError("--step-mode: for --model s4 only (S4D steps its diagonal recurrence)") }
        if model == "s4", initialization != .lin { throw ValidationError("--initialization: for --model s4d only (S4 starts from HiPPO-LegS)") }
        // Input, two outputs and the state of every row, at the least (Mamba's inner width is 2M;
        // S4 and S4D keep at least N/2 complex values per row, N real ones).
        let width = model.hasPrefix("mamba") ? 2 * channels : channels, value = precision == .float32 ? 4 : 8
        try requireMemory([([batch, width, length], 3 * value), ([batch, width, state], value)],
                          flags: "--batch, --channels, --length, --state")
    }

    func run() throws {
        switch precision {
        case .float32: try compare(Float.self)
        case .float64: try compare(Double.self)
        }
    }

    func compare<T: SSMScalar>(_: T.Type) throws {
        switch model {
        case "mamba": return try compare(MambaMixer<T>(width: channels, state: state))
        case "mamba2":
            let c: Mamba2Configuration
            do {
                c = try Mamba2Configuration(modelWidth: channels, state: state,
                                            headDimension: headDim ?? Mamba2Configuration.defaultHeadDimension(innerWidth: 2 * channels),
                                            groups: groups, chunkLength: chunkSize)
            } catch {
                throw error.renamingArguments(["d_model": "--channels", "d_state": "--state", "headdim": "--head-dim", "ngroups": "--groups",
                                               "chunk_size": "--chunk-size"])
            }
            return try compare(Mamba2Mixer<T>(configuration: c))
        default: break
        }
        let checkpointFile = try checkpoint.map { try SafeTensorsFile(path: $0) }
        var inputs = checkpointFile.map { EvalInputs<T>(file: $0) }
        let (B, L) = (batch, length)
        var rng = SplitMix64(seed: seed &+ 0x5EED)
        var k: [T] = [], yRecurrent: [T] = [], u: [T] = [], d: [T] = []
        var kernelSeconds = 0.0, recurrentSeconds = 0.0, H = channels, N = state
        // The input and D, once H is known.
        func draw(_ h: Int, _ given: Tensor<T>?) {
            u = (0 ..< B * h * L).map { _ in T.random(in: -1 ..< 1, using: &rng) }
            d = given?.scalars ?? (0 ..< h).map { _ in T.random(in: -1 ..< 1, using: &rng) }
            k = [T](repeating: 0, count: h * L)
            yRecurrent = [T](repeating: 0, count: B * h * L)
        }
        if model == "s4d" {
            let p: S4DParameters<T>
            if inputs != nil {
                let (logDt, c, logAReal, aImag, b) = try readS4DParameters(&inputs!)
                (H, N) = (c.shape[0], 2 * c.shape[1])
                p = S4DParameters(logDt: logDt.scalars, c: complexValues(c), logAReal: logAReal.scalars, aImag: aImag.scalars,
                                  b: b.map(complexValues))
            } else {
                p = try S4DParameters<T>(channels: H, state: N, initialization: initialization, seed: seed)
            }
            let given = try inputs?.optional("D", "(\(H))", ranks: [1])
            if let given { try expectShape(given, "D", [H]) }
            try inputs?.finish("the s4d-kernel parameters and optional D")
            draw(H, given)
            let kernel = try S4DKernel<T>(channels: H, modes: N / 2, discretization: .zoh)
            // Timed on a second call: the first one plans FFTs.
            try kernel.forward(length: L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b, k: &k)
            kernelSeconds = try seconds { try kernel.forward(length: L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b, k: &k) }
            let recurrence = try S4DRecurrence(kernel: kernel, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b, d: d)
            let engine = StepEngine(recurrence)
            var s = try engine.makeState(batch: B)
            recurrentSeconds = try seconds { try engine.run(&s, u: u, y: &yRecurrent, length: L) }
        } else {
            var invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], pp: [Complex<T>], c: [Complex<T>], kernel: S4Kernel<T>
            if inputs != nil {
                let params = try readS4Parameters(&inputs!)
                guard params.c.shape[0] == 1 else {
                    throw SSMError.shape(argument: "C", expected: "one output copy (1, H, N2, 2)", actual: params.c.shape)
                }
                kernel = try params.kernel(T.self)
                (H, N) = (kernel.channels, 2 * kernel.modes)
                (invDt, aReal, aImag) = (params.invDt.scalars, params.aReal.scalars, params.aImag.scalars)
                (b, pp, c) = (complexValues(params.b), complexValues(params.p), complexValues(params.c))
            } else {
                let m = try SeededS4Model<T>(channels: H, state: N, rng: &rng)
                (invDt, aReal, aImag, b, pp, c, kernel) = (m.invDt, m.aReal, m.aImag, m.b, m.p, m.cTilde, m.kernel)
            }
            let given = try inputs?.optional("D", "(\(H))", ranks: [1])
            if let given { try expectShape(given, "D", [H]) }
            try inputs?.finish("the s4-kernel parameters and optional D")
            draw(H, given)
            // Timed on a second call: the first one plans the inverse FFT.
            try kernel.forward(length: L, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: pp, cTilde: c, k: &k)
            kernelSeconds = try seconds { try kernel.forward(length: L, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: pp, cTilde: c, k: &k) }
            let recurrence = try S4Recurrence(kernel: kernel, mode: stepMode, length: L, invDt: invDt, aReal: aReal, aImag: aImag,
                                              b: b, p: pp, cTilde: c, skip: d)
            let engine = StepEngine(recurrence, as: T.self)
            var s = try engine.makeState(batch: B)
            recurrentSeconds = try seconds { try engine.run(&s, u: u, y: &yRecurrent, length: L) }
        }
        let conv = try FFTConvolution<T>(shape: ConvolutionShape(batch: B, channels: H, length: L))
        var yConv = [T](repeating: 0, count: B * H * L)
        try conv.forward(u: u, kernel: k, skip: d, y: &yConv)
        let convSeconds = try seconds { try conv.forward(u: u, kernel: k, skip: d, y: &yConv) } + kernelSeconds
        // Rows of L: element k is at t = k mod L.
        let (maxAbs, relative, segments) = modeDifference(yConv, yRecurrent, length: L) { $0 % L }
        let limit = tolerance ?? (T.self == Float.self ? 1e-4 : 1e-10)
        let samples = Double(B * H * L)
        let passed = relative <= limit
        let origin = checkpoint.map { "checkpoint \($0)" }
        let name = model == "s4" ? "s4 (\(stepMode.rawValue), \(origin ?? "HiPPO-LegS"))" : "s4d (\(origin ?? initialization.rawValue))"
        if json {
            print(jsonLine([("model", model), ("step_mode", model == "s4" ? stepMode.rawValue : "diagonal"),
                            ("init", checkpoint != nil ? "checkpoint" : (model == "s4" ? "legs-nplr" : initialization.rawValue)), ("batch", B), ("channels", H),
                            ("state", N), ("length", L), ("precision", T.precisionName), ("max_abs_error", maxAbs),
                            ("max_rel_error", relative), ("tolerance", limit), ("passed", passed),
                            ("conv_samples_per_second", samples / convSeconds),
                            ("recurrent_samples_per_second", samples / recurrentSeconds)]))
        } else {
            print("crosscheck \(name): B=\(B) H=\(H) N=\(N) L=\(L) \(T.precisionName) seed=\(seed)")
            print("  max |y_conv − y_rec| = \(maxAbs)   relative to max|y| = \(relative)   tolerance \(limit)")
            print("  relative error by eighth of t: " + segments.map { "\($0)" }.joined(separator: "  "))
            print("  convolution mode \(formatFixed(samples / convSeconds / 1e6, 2)) M samples/s (kernel + FFT), "
                  + "recurrent mode \(formatFixed(samples / recurrentSeconds / 1e6, 2)) M samples/s")
            print(passed ? "  ok" : "  FAILED: the error exceeds the tolerance")
        }
        if !passed { throw ExitCode(1) }
    }
}

/// How far `other` is from `reference` (two modes' outputs): the largest absolute difference,
/// that relative to max |reference|, and the relative one per eighth of the sequence, where
/// `position(k)` is the time step of element k.
func modeDifference<T: FFTScalar>(_ reference: [T], _ other: [T], length L: Int,
                                  position: (Int) -> Int) -> (maxAbs: Double, relative: Double, byEighth: [Double]) {
    let scale = max(reference.reduce(0) { max($0, abs(Double($1))) }, .leastNormalMagnitude)
    var maxAbs = 0.0
    var segments = [Double](repeating: 0, count: 8)
    for (k, (a, b)) in zip(reference, other).enumerated() {
        let e = abs(Double(a) - Double(b)), t = position(k)
        maxAbs = max(maxAbs, e)
        segments[t * 8 / L] = max(segments[t * 8 / L], e / scale)
    }
    return (maxAbs, maxAbs / scale, segments)
}

extension S4DInitialization: ExpressibleByArgument {}

/// A seeded S4 model: HiPPO-LegS in NPLR form shared by all channels (one SSM, rank 1),
/// Δ log-uniform in [1e-3, 1e-1], C̃ uniform in the unit square. Used by crosscheck and bench.
struct SeededS4Model<T: FFTScalar> {
    let invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>], cTilde: [Complex<T>]
    let kernel: S4Kernel<T>

    init(channels H: Int, state N: Int, rng: inout SplitMix64) throws {
        let legs = try S4LegSInitialization<T>(channels: H, state: N, rng: &rng)
        (invDt, aReal, aImag, b, p) = (legs.invDt, legs.aReal, legs.aImag, legs.b, legs.p)
        cTilde = (0 ..< H * N / 2).map { _ in Complex(T.random(in: -1 ..< 1, using: &rng), T.random(in: -1 ..< 1, using: &rng)) }
        kernel = try S4Kernel<T>(copies: 1, channels: H, ssms: 1, modes: N / 2, rank: 1)
    }

    func recurrence(mode: S4Recurrence.StepMode, length L: Int, skip: [T]?) throws -> S4Recurrence {
        try S4Recurrence(kernel: kernel, mode: mode, length: L, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p,
                         cTilde: cTilde, skip: skip)
    }
}
