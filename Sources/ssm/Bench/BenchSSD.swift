import ArgumentParser
import SSMKit

/// `ssm bench ssd`: the chunked SSD scan (Mamba-2) against the time of its own GEMMs.
struct BenchSSD: ParsableCommand, BenchRows {
    static let configuration = CommandConfiguration(
        commandName: "ssd",
        abstract: "Time the SSD scan (Mamba-2), forward or forward + backward, against its GEMMs alone.",
        discussion: """
        --channels is H, the heads (default 24, with --head-dim 64, --state 128, --groups 1 and \
        --chunk-size 256: mamba2-130m's layer). Inputs as the layer's: dt raw with dt_bias and \
        softplus, A = −(1 … H), D per head. Each row reports the median and spread over \
        repeats, tokens per second and GFLOP/s of the chunked algorithm, whose forward does, \
        per chunk of Q tokens, 2Q²N per group (C·Bᵀ) and 2Q²P + 4QPN per head (the intra-chunk \
        product, the chunk state, the inter-chunk output); its backward does twice that. The \
        bound is those GEMMs alone, at the same shapes, in the same parallel layout (chunks of \
        each group, then heads) and threads, timed in the same run — forward + backward's bound \
        is three times the forward's; ratio = time / bound.
        """
    )

    @OptionGroup var options: BenchOptions

    @Option(name: .long, help: "Head dimension P.") var headDim: Int = 64
    @Option(name: .long, help: "State size N.") var state: Int = 128
    @Option(name: .long, help: "Groups G of B and C (dividing H).") var groups: Int = 1
    @Option(name: .long, help: "Chunk length Q.") var chunkSize: Int = 256
    @Flag(name: .long, help: "Time forward + backward instead of forward alone.") var backward = false

    func validate() throws {
        for (name, v) in [("--head-dim", headDim), ("--state", state), ("--groups", groups), ("--chunk-size", chunkSize)] where v < 1 {
            throw ValidationError("\(name): expected a positive value, got \(v)")
        }
    }

    func run() throws {
        try options.forEachRow(header: "op   pass       B    H    P    N  G       L    Q  precision  median_ms     min_ms     max_ms    tokens/s  GFLOP/s  bound_ms  ratio", defaultChannels: [24], self)
    }

    func measureRow<T: SSMScalar>(_: T.Type, B: Int, H: Int, L: Int) throws {
        let (P, N, G, Q) = (headDim, state, groups, chunkSize)
        let shape = try SSDShape(batch: B, length: L, heads: H, headDimension: P, groups: G, state: N)
        let scan = try SSDScan<T>(shape: shape, chunkLength: Q, threads: options.threads)
        var rng = SplitMix64(seed: 12)
        func r(_ n: Int, _ scale: Double = 1) -> [T] { (0 ..< n).map { _ in T(scale * Double.random(in: -1 ..< 1, using: &rng)) } }
        let inputs = SSDInputs<T>(x: r(shape.sequenceCount), dt: r(shape.timeStepCount, 2), a: (0 ..< H).map { -T($0 + 1) },
                                  b: r(shape.projectionCount), c: r(shape.projectionCount), d: r(H), dtBias: r(H, 0.5))
        let dOut = r(shape.sequenceCount)
        func step() throws {
            if backward { _ = try scan.backward(inputs, dOut: dOut) } else { _ = try scan.forward(inputs) }
        }
        let gemms = ChunkGEMMs<T>(batch: B, heads: H, headDimension: P, groups: G, state: N, chunk: Q, length: L, threads: scan.threads)
        let warmup = try seconds { try step() }
        gemms.run()
        // Interleaved, so that the machine's drift touches both alike.
        var times: [Double] = [], bounds: [Double] = []
        for _ in 0 ..< options.repeats {
            times.append(try seconds { try step() })
            bounds.append(seconds { gemms.run() } * (backward ? 3 : 1))
        }
        let t = Timing(times), b = Timing(bounds)
        let flops = gemms.forwardFlops * (backward ? 3 : 1)
        let tokens = Double(B * L)
        let pass = backward ? "forward+backward" : "forward"
        if options.json {
            print(jsonLine([("op", "ssd"), ("pass", pass), ("batch", B), ("heads", H), ("head_dim", P), ("state", N), ("groups", G),
                            ("length", L), ("chunk", Q), ("precision", T.precisionName), ("threads", scan.threads), ("seconds", t.median),
                            ("seconds_min", t.min), ("seconds_max", t.max), ("tokens_per_second", tokens / t.median),
                            ("flops", flops), ("gflops_per_second", flops / t.median / 1e9), ("bound_seconds", b.median),
                            ("ratio", t.median / b.median), ("warmup_seconds", warmup), ("cpu", BuildInfo.cpuModel)]))
        } else {
            print("ssd  \(backward ? "fwd+bwd" : "fwd    ") \(column(B, 4)) \(column(H, 4)) \(column(P, 4)) \(column(N, 4)) \(column(G, 2)) "
                + "\(column(L, 7)) \(column(Q, 4))  \(T.precisionName) \(column(t.median * 1e3, 10, 3)) \(column(t.min * 1e3, 10, 3)) "
                + "\(column(t.max * 1e3, 10, 3)) \(column(tokens / t.median, 11, 1)) \(column(flops / t.median / 1e9, 8, 2)) "
                + "\(column(b.median * 1e3, 9, 3)) \(column(t.median / b.median, 6, 2))")
        }
    }
}

/// The matrix products of the chunked SSD forward alone, on buffers of the right shapes, in
/// the scan's two parallel phases: per (batch, group, chunk) C·Bᵀ (Q×N · N×Q), then per head
/// of the group the intra-chunk product (Q×Q · Q×P) and the chunk state (P×Q · Q×N); per
/// (batch, head) the inter-chunk output of every chunk (Q×N · N×P).
final class ChunkGEMMs<T: SSMScalar>: @unchecked Sendable {
    let (batch, heads, headDimension, groups, state, chunk, chunks, threads): (Int, Int, Int, Int, Int, Int, Int, Int)
    /// Per worker: four slots (operands and results), each as large as the largest product:
    /// Q×Q, Q×N, Q×P or P×N.
    private let buffers: UnsafeMutablePointer<T>
    private let perWorker: Int

    init(batch: Int, heads: Int, headDimension: Int, groups: Int, state: Int, chunk: Int, length: Int, threads: Int) {
        let Q = min(chunk, length)
        (self.batch, self.heads, self.headDimension, self.groups, self.state, self.chunk) = (batch, heads, headDimension, groups, state, Q)
        (chunks, self.threads) = ((length + Q - 1) / Q, threads)
        perWorker = 4 * max(Q * Q, Q * state, Q * headDimension, headDimension * state)
        buffers = .allocate(capacity: perWorker * threads)
        buffers.initialize(repeating: T(0.01), count: perWorker * threads)
    }

    deinit { buffers.deallocate() }

    /// The forward's multiply-adds × 2 over every chunk (the last one counted whole).
    var forwardFlops: Double {
        let (Q, N, P) = (Double(chunk), Double(state), Double(headDimension))
        return Double(batch * chunks) * (Double(groups) * 2 * Q * Q * N + Double(heads) * (2 * Q * Q * P + 4 * Q * P * N))
    }

    func run() {
        let (Q, N, P) = (chunk, state, headDimension)
        let perGroup = heads / groups
        WorkerPool.forEachInParallel(batch * groups * chunks, threads: threads, self) { g, _, worker in
            let (a, b, c, d) = g.slots(worker)
            BLAS.matmul(a, b, transposeB: true, m: Q, n: Q, k: N, into: c, threads: 1)
            for _ in 0 ..< perGroup {
                BLAS.matmul(c, a, m: Q, n: P, k: Q, into: d, threads: 1)
                BLAS.matmul(a, transposeA: true, b, m: P, n: N, k: Q, into: d, threads: 1)
            }
        }
        WorkerPool.forEachInParallel(batch * heads, threads: threads, self) { g, _, worker in
            let (a, b, _, d) = g.slots(worker)
            for _ in 0 ..< g.chunks { BLAS.matmul(a, b, m: Q, n: P, k: N, into: d, threads: 1) }
        }
    }

    private func slots(_ worker: Int) -> (UnsafeMutablePointer<T>, UnsafeMutablePointer<T>, UnsafeMutablePointer<T>, UnsafeMutablePointer<T>) {
        let base = buffers + worker * perWorker, quarter = perWorker / 4
        return (base, base + quarter, base + 2 * quarter, base + 3 * quarter)
    }
}
