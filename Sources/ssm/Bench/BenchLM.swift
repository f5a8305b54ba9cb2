import ArgumentParser
import SSMKit
import SSMLanguage
import SSMTraining

/// `ssm bench lm`: prefill and decode speed of a pretrained model against its bounds.
struct BenchLM: ParsableCommand, LanguageModelTask {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Prefill and decode tokens/s of a pretrained Mamba or Mamba-2 model, with the bounds measured in the same run.",
        discussion: """
        Prefill: a prompt of each --prompt-lengths (random ids, batch 1) from the zero state in \
        chunks of --prefill-chunk, best of --repeats; its bound is the time of the same \
        projections (Mamba: in_proj, x_proj, dt_proj, out_proj; Mamba-2: in_proj, out_proj; of \
        every block and chunk) as GEMMs alone, on this run's BLAS. Decode: --new-tokens greedy \
        steps after a 16-token prompt, with the weights read as they are and (Mamba) as \
        bfloat16 copies; its bound is the bytes of weights a step reads over the \
        memory bandwidth measured here (a vectorized read of 512 MiB on the same threads).
        """
    )

    @Option(name: .long, help: "Hugging Face model folder.")
    var model: String

    @Option(name: .long, help: "Prompt lengths for the prefill rows.")
    var promptLengths: LengthList = LengthList([512, 2048])

    @Option(name: .long, help: "Decoded tokens per decode row.")
    var newTokens = 32

    @Option(name: .long, help: "Prompt tokens per scan chunk.")
    var prefillChunk = 512

    @Option(name: .long, help: "Timed repeats (the best is reported).")
    var repeats = 2

    @Option(name: .long, help: "Worker threads (default: all online processors).")
    var threads: Int?

    @Flag(name: .long, help: "Print one JSON object per row.")
    var json = false

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats: expected a positive count, got \(repeats)") }
        if newTokens < 1 { throw ValidationError("--new-tokens: expected a positive count, got \(newTokens)") }
        if let threads, threads < 1 { throw ValidationError("--threads: expected a positive count, got \(threads)") }
        if promptLengths.values.contains(where: { $0 < 1 }) { throw ValidationError("--prompt-lengths: expected positive lengths") }
    }

    func run() throws { try withLanguageModel(model, threads: threads, precision: .float32, self) }

    func run<Mixer: LanguageMixer>(_ lm: LanguageModel<Mixer>) throws {
        let c = lm.configuration
        let cpu = BuildInfo.cpuModel
        var rng = SplitMix64(seed: 1)
        for L in promptLengths.values {
            let ids = (0 ..< L).map { _ in Int.random(in: 2 ..< c.vocabulary, using: &rng) }
            var best = Double.infinity
            for _ in 0 ... repeats {  // the first run warms up
                var state = try lm.makeState(batch: 1)
                let t = try seconds { _ = try lm.prefill(ids, length: L, state: &state, chunk: prefillChunk) }
                best = min(best, t)
            }
            let bound = gemmSeconds(c, length: L)
            let rate = Double(L) / best
            if json {
                print(jsonLine([("op", "prefill"), ("prompt_tokens", L), ("tokens_per_second", rate), ("seconds", best),
                                ("gemm_bound_seconds", bound), ("ratio_to_bound", best / bound), ("threads", lm.threads), ("cpu", cpu)]))
            } else {
                print("prefill \(column(L, 6)) tokens: \(column(rate, 9, 1)) tokens/s (\(formatFixed(best, 3)) s; GEMMs alone \(formatFixed(bound, 3)) s, ratio \(formatFixed(best / bound, 2)))")
            }
        }
        let bandwidth = MemoryBandwidth.measure(threads: lm.threads)
        let prompt = (0 ..< 16).map { _ in Int.random(in: 2 ..< c.vocabulary, using: &rng) }
        let options = try GenerationOptions(maxNewTokens: newTokens, stopTokens: [])
        for weights in DecodeWeights.allCases where weights == .native || !Mixer.bfloat16Parameters.isEmpty {
            let decoder = weights == .native ? lm : try LanguageModel<Mixer>(directory: model, threads: threads, decodeWeights: weights)
            let generator = Generator(model: decoder)
            var rate = 0.0
            for _ in 0 ... repeats { rate = max(rate, try generator.generate([prompt], options: options).decodeTokensPerSecond) }
            let bytes = decoder.bytesReadPerToken
            let bound = bandwidth / Double(bytes)
            if json {
                print(jsonLine([("op", "decode"), ("decode_weights", weights.rawValue), ("new_tokens", newTokens), ("tokens_per_second", rate),
                                ("bytes_per_token", bytes), ("bandwidth_bytes_per_second", bandwidth), ("bound_tokens_per_second", bound),
                                ("fraction_of_bound", rate / bound), ("threads", lm.threads), ("cpu", cpu)]))
            } else {
                print("decode (\(weights.rawValue) weights): \(formatFixed(rate, 1)) tokens/s; bound \(formatFixed(bound, 1)) tokens/s "
                    + "(\(formatFixed(Double(bytes) / 1e6, 1)) MB per token at \(formatFixed(bandwidth / 1e9, 2)) GB/s): \(formatFixed(rate / bound, 2)) of it")
            }
        }
    }

    /// Seconds of the prefill's projections alone as GEMMs at the same shapes and threads
    /// (best of 3).
    func gemmSeconds(_ c: LanguageModelConfiguration, length L: Int) -> Double {
        // (outputs, inputs) of each projection a chunk of C tokens goes through: C × inputs → C × outputs.
        let projections: [(outputs: Int, inputs: Int)]
        switch c.mixer {
        case .mamba(let m):
            projections = [(2 * m.innerWidth, m.modelWidth), (m.dtRank + 2 * m.state, m.innerWidth), (m.innerWidth, m.dtRank),
                           (m.modelWidth, m.innerWidth)]
        case .mamba2(let m):
            projections = [(m.projectionWidth, m.modelWidth), (m.modelWidth, m.innerWidth)]
        }
        let chunks = stride(from: 0, to: L, by: prefillChunk).map { min(prefillChunk, L - $0) }
        let C = chunks.max()!
        let widest = projections.map { max($0.outputs, $0.inputs) }.max()!
        let buffer = { (n: Int) -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0.01, count: n)
            return p
        }
        let (w, h, out) = (buffer(projections.map { $0.outputs * $0.inputs }.max()!), buffer(C * widest), buffer(C * widest))
        defer { w.deallocate(); h.deallocate(); out.deallocate() }
        let t = threads ?? WorkerPool.onlineProcessorCount()
        var best = Double.infinity
        for _ in 0 ..< 3 {
            best = min(best, seconds {
                for _ in 0 ..< c.layers {
                    for C in chunks {
                        for p in projections { BLAS.matmul(h, w, transposeB: true, m: C, n: p.outputs, k: p.inputs, into: out, threads: t) }
                    }
                }
            })
        }
        return best
    }
}
