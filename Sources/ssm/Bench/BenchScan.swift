import ArgumentParser
import SSMKit

/// `ssm bench scan`: selective scan (S6) throughput against the exponentials-only bound.
struct BenchScan: ParsableCommand, BenchRows {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Time the selective scan (Mamba's S6), forward or forward + backward.",
        discussion: """
        --channels is D. Inputs as Mamba's: B and C input-dependent (B, N, L), D, z, delta_bias, \
        softplus on delta, A = −(1 … N). Each row reports the median and spread over repeats, \
        samples (B·D·L) per second, nanoseconds per (token × channel × state), and the bound: the \
        B·D·L·N exponentials the forward takes, alone, with the same vectorized exponential and \
        threads, timed in the same run; ratio = time / bound.
        """
    )

    @OptionGroup var options: BenchOptions

    @Option(name: .long, help: "State size N.")
    var state: Int = 16

    @Flag(name: .long, help: "Time forward + backward instead of forward alone.")
    var backward = false

    @Option(name: .long, help: "Steps per recomputed chunk in the backward pass.")
    var chunk: Int = SelectiveScan<Float>.defaultChunkLength

    func validate() throws {
        guard state >= 1 else { throw ValidationError("--state: expected a positive N, got \(state)") }
        guard chunk >= 1 else { throw ValidationError("--chunk: expected a positive step count, got \(chunk)") }
    }

    func run() throws {
        try options.forEachRow(header: "op    pass     B      D        L    N  precision  median_ms     min_ms     max_ms  Msamples/s  ns/(t·d·n)  bound_ms  ratio", self)
    }

    func row<T: SelectiveScanScalar>(_: T.Type, B: Int, D: Int, L: Int) throws {
        let N = state
        let shape = try SelectiveScanShape(batch: B, channels: D, state: N, length: L)
        let scan = try SelectiveScan<T>(shape: shape, deltaSoftplus: true, threads: options.threads, chunkLength: chunk)
        var rng = SplitMix64(seed: 11)
        func r(_ n: Int, _ scale: Double = 1) -> [T] { (0 ..< n).map { _ in T(scale * Double.random(in: -1 ..< 1, using: &rng)) } }
        let x = SelectiveScanInputs<T>(
            u: r(shape.sequenceCount), delta: r(shape.sequenceCount, 2), a: (0 ..< D * N).map { -T($0 % N + 1) },
            b: r(shape.count(shape.b)), c: r(shape.count(shape.c)), d: r(D), z: r(shape.sequenceCount), deltaBias: r(D, 0.5))
        let dOut = r(shape.sequenceCount)
        func step() throws {
            if backward { _ = try scan.backward(x, dOut: dOut) } else { _ = try scan.forward(x) }
        }
        var sink: T = 0
        func bound() throws { sink += try scan.runExponentialsOnly(x) }
        let warmup = try seconds { try step() }
        try bound()
        // Interleaved, so that the machine's drift touches both alike.
        var times: [Double] = [], bounds: [Double] = []
        for _ in 0 ..< options.repeats {
            times.append(try seconds { try step() })
            bounds.append(try seconds { try bound() })
        }
        if !sink.isFinite { print("(bound sum not finite)") }
        let t = Timing(times), b = Timing(bounds)
        let samples = Double(B * D * L)
        let ns = t.median / (samples * Double(N)) * 1e9
        let pass = backward ? "forward+backward" : "forward"
        if options.json {
            print(jsonLine([("op", "scan"), ("model", "s6"), ("pass", pass), ("batch", B), ("channels", D), ("state", N),
                            ("length", L), ("precision", T.precisionName), ("threads", scan.threads), ("seconds", t.median),
                            ("seconds_min", t.min), ("seconds_max", t.max), ("samples_per_second", samples / t.median),
                            ("ns_per_element", ns), ("bound_seconds", b.median), ("ratio", t.median / b.median),
                            ("chunk", chunk), ("warmup_seconds", warmup)]))
        } else {
            print("scan  \(backward ? "fwd+bwd" : "fwd    ") \(column(B, 3)) \(column(D, 6)) \(column(L, 8)) \(column(N, 4))  \(T.precisionName) "
                + "\(column(t.median * 1e3, 10, 3)) \(column(t.min * 1e3, 10, 3)) \(column(t.max * 1e3, 10, 3)) "
                + "\(column(samples / t.median / 1e6, 11, 2)) \(column(ns, 11, 3)) \(column(b.median * 1e3, 9, 3)) \(column(t.median / b.median, 6, 2))")
        }
    }
}

extension BenchScan {
    func measureRow<T: SSMScalar>(_ t: T.Type, B: Int, H: Int, L: Int) throws { try row(t, B: B, D: H, L: L) }
}
