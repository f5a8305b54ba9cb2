import ArgumentParser
import SSMKit

/// `ssm bench kernel`: SSM kernel generation throughput.
struct BenchKernel: ParsableCommand, BenchRows {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "Time the generation of the kernel K̄ (H, L) from SSM parameters.",
        discussion: """
        Reports the median and spread over repeats, samples (H·L) per second, and the achieved \
        GFLOP/s of the hot loop: for s4d the Vandermonde loop, 8 flops per (channel, mode, step) \
        (a complex multiply and two additions); for s4 the Cauchy sums, 16 + 8·(R+1)² flops per \
        (channel, node, mode) (one complex reciprocal of a product, and two real-weighted complex \
        sums per (a, b) pair), R = 1, one SSM per channel.
        """
    )

    @OptionGroup var options: BenchOptions

    @Option(name: .long, help: "s4d (Vandermonde) or s4 (DPLR: Cauchy + Woodbury).")
    var model: String = "s4d"

    @Option(name: .long, help: "State size N (N/2 complex modes per channel).")
    var state: Int = 64

    @Flag(name: .long, help: "Time forward + backward instead of forward alone.")
    var backward = false

    @Option(name: .long, help: "s4d: steps between re-anchorings of the powers in Double (1: every power in Double).")
    var anchor: Int = S4DKernel<Float>.defaultAnchorInterval

    @Flag(name: .long, help: "s4d: also report the error against the Double reference (an exact exponential per power).")
    var check = false

    func validate() throws {
        guard model == "s4d" || model == "s4" else { throw ValidationError("--model: expected s4d or s4, got \(model)") }
        guard state >= 2, state % 2 == 0 else { throw ValidationError("--state: expected an even N ≥ 2, got \(state)") }
        guard anchor >= 1 else { throw ValidationError("--anchor: expected a positive step count, got \(anchor)") }
    }

    func run() throws {
        try options.withWisdom(rows)
    }

    func rows() throws {
        try options.forEachRow(header: "op      model pass      H        L    N  precision  median_ms     min_ms     max_ms  Msamples/s  GFLOP/s", batches: false, self)
    }

    func row<T: FFTScalar>(_: T.Type, H: Int, L: Int) throws {
        if model == "s4" { return try rowS4(T.self, H: H, L: L) }
        let N2 = state / 2
        let kernel = try S4DKernel<T>(channels: H, modes: N2, threads: options.threads, anchorInterval: anchor)
        var rng = SplitMix64(seed: 7)
        let logDt = (0 ..< H).map { _ in T(Double.random(in: Double.log(1e-3) ..< Double.log(1e-1), using: &rng)) }
        let c = (0 ..< H * N2).map { _ in Complex(T.random(in: -1 ..< 1, using: &rng), T.random(in: -1 ..< 1, using: &rng)) }
        let logAReal = [T](repeating: T(Double.log(0.5)), count: H * N2)
        let aImag = (0 ..< H * N2).map { T(Double.pi) * T($0 % N2) }
        var k = [T](repeating: 0, count: H * L)
        let dK = (0 ..< H * L).map { _ in T.random(in: -1 ..< 1, using: &rng) }
        var dLogDt = [T](repeating: 0, count: H), dLogAReal = [T](repeating: 0, count: H * N2)
        var dAImag = dLogAReal, dC = [Complex<T>](repeating: .zero, count: H * N2)
        var dB: [Complex<T>]? = nil
        func step() throws {
            try kernel.forward(length: L, logDt: logDt, c: c, logAReal: logAReal, aImag: aImag, k: &k)
            if backward {
                try kernel.backward(length: L, dK: dK, logDt: logDt, c: c, logAReal: logAReal, aImag: aImag,
                                    dLogDt: &dLogDt, dC: &dC, dLogAReal: &dLogAReal, dAImag: &dAImag, dB: &dB)
            }
        }
        let warmup = try seconds { try step() }
        var times: [Double] = []
        for _ in 0 ..< options.repeats { times.append(try seconds { try step() }) }
        // The backward pass runs two Vandermonde sums: 3× the forward's loop work in all.
        var error: Double? = nil
        if check {
            try kernel.forward(length: L, logDt: logDt, c: c, logAReal: logAReal, aImag: aImag, k: &k)
            let exact = kernel.reference(length: L, logDt: logDt, c: c, logAReal: logAReal, aImag: aImag)
            let scale = exact.reduce(0) { max($0, abs($1)) }
            error = zip(k, exact).reduce(0) { max($0, abs(Double($1.0) - $1.1)) } / max(scale, .leastNormalMagnitude)
        }
        report(Timing(times), H: H, L: L, flops: 8.0 * Double(H * N2 * L) * (backward ? 3 : 1), threads: kernel.threads, T.self, warmup: warmup,
               error: error)
    }

    /// S4 (DPLR) kernel generation: S = H SSMs, rank 1, one output copy, HiPPO-LegS-like modes.
    func rowS4<T: FFTScalar>(_: T.Type, H: Int, L: Int) throws {
        guard !backward else { throw ValidationError("--backward: only --model s4d times a backward pass so far") }
        let N2 = state / 2
        let kernel = try S4Kernel<T>(copies: 1, channels: H, ssms: H, modes: N2, rank: 1, threads: options.threads)
        var rng = SplitMix64(seed: 7)
        func z() -> Complex<T> { Complex(T.random(in: -1 ..< 1, using: &rng), T.random(in: -1 ..< 1, using: &rng)) }
        let invDt = (0 ..< H).map { _ in T(Double.random(in: Double.log(1e-3) ..< Double.log(1e-1), using: &rng)) }
        let aReal = [T](repeating: T(Double.log(0.5)), count: H * N2)
        let aImag = (0 ..< H * N2).map { T(Double.pi) * T($0 % N2) }
        let b = (0 ..< H * N2).map { _ in z() }, p = (0 ..< H * N2).map { _ in z() }, c = (0 ..< H * N2).map { _ in z() }
        var k = [T](repeating: 0, count: H * L)
        func step() throws { try kernel.forward(length: L, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: c, k: &k) }
        let warmup = try seconds { try step() }
        var times: [Double] = []
        for _ in 0 ..< options.repeats { times.append(try seconds { try step() }) }
        report(Timing(times), H: H, L: L, flops: Double(16 + 8 * 4) * Double(H * N2 * (L / 2 + 1)), threads: kernel.threads, T.self,
               warmup: warmup)
    }

    func report<T: FFTScalar>(_ t: Timing, H: Int, L: Int, flops: Double, threads: Int, _: T.Type, warmup: Double, error: Double? = nil) {
        let samples = Double(H * L)
        if options.json {
            print(jsonLine([("op", "kernel"), ("model", model), ("pass", backward ? "forward+backward" : "forward"),
                            ("batch", 1), ("channels", H), ("state", state), ("length", L),
                            ("precision", T.precisionName), ("threads", threads), ("seconds", t.median),
                            ("seconds_min", t.min), ("seconds_max", t.max), ("samples_per_second", samples / t.median),
                            ("gflops", flops / t.median / 1e9), ("warmup_seconds", warmup)] + (model == "s4d" ? [("anchor", anchor)] : [])
                            + (error.map { [("relative_error", $0)] } ?? [])))
        } else {
            print("kernel  \(model.padding(to: 4)) \(backward ? "fwd+bwd" : "fwd    ") \(column(H, 5)) \(column(L, 8)) \(column(state, 4))  \(T.precisionName) "
                + "\(column(t.median * 1e3, 10, 3)) \(column(t.min * 1e3, 10, 3)) \(column(t.max * 1e3, 10, 3)) \(column(samples / t.median / 1e6, 11, 2)) \(column(flops / t.median / 1e9, 8, 2))"
                + (error.map { "  rel_err \(formatFixed($0 * 1e6, 3))e-6" } ?? ""))
        }
    }
}

extension BenchKernel {
    func measureRow<T: SSMScalar>(_ t: T.Type, B: Int, H: Int, L: Int) throws { try row(t, H: H, L: L) }
}
