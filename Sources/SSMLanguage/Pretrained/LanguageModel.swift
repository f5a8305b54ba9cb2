import SSMKit
import SSMTraining

/// A pretrained language model of Mamba or Mamba-2 blocks, for inference (transformers'
/// `MambaForCausalLM` and `Mamba2ForCausalLM`, mamba_ssm's `MambaLMHeadModel`): use it as
/// ``MambaLanguageModel`` or ``Mamba2LanguageModel``. Legend: B batch · L length · M width ·
/// V vocabulary.
///
///     h₀ = embedding[ids]                                  (B, L, M)
///     hᵢ = hᵢ₋₁ + mixerᵢ(RMSNorm(hᵢ₋₁; normᵢ.weight))       i = 1 … layers
///     logits = RMSNorm(h; norm_f.weight) · lm_headᵀ          (B, L, V); lm_head = embedding when tied
///
/// Every weight lives in one buffer converted once from the checkpoint (F32, F16 or BF16 into
/// the mixer's scalar). Three ways to run it, which agree to rounding:
/// - ``logits(_:batch:length:)``: the whole forward, every position's logits;
/// - ``prefill(_:length:state:chunk:)``: the scan over a prompt in chunks with the state carried
///   from chunk to chunk, the last position's logits only;
/// - ``step(_:state:)``: one token per sequence in step (recurrent) mode.
///
/// ``LanguageModelConfiguration/init(contentsOf:)`` tells which family a folder holds.
public final class LanguageModel<Mixer: LanguageMixer>: @unchecked Sendable {
    public typealias T = Mixer.Scalar
    public let configuration: LanguageModelConfiguration
    public let threads: Int
    let mixers: [Mixer]
    let layout: ParameterLayout
    /// The weights: embedding (V, M); per layer the norm (M) and the mixer's parameters in
    /// declaration order; norm_f (M); lm_head (V, M) unless tied.
    let weights: UnsafeMutableBufferPointer<T>
    let embeddingOffset: Int, layerOffsets: [Int], normFOffset: Int, headOffset: Int
    /// bfloat16 copies of the projections and the head for decoding (``DecodeWeights/bfloat16``).
    private(set) var decodeCopies: DecodeCopies?
    /// The scan-mode buffers of one chunk shape, shared by every block (they run in turn).
    let passes = ReusePool<PassShape, Mixer.Activations>(capacity: 2)

    /// The official names under which the checkpoint stores each weight of block `i`.
    static func mixerPrefix(_ i: Int) -> String { "backbone.layers.\(i).mixer." }

    /// A model whose weights a loader fills (their values are undefined until then).
    /// - Throws: ``PretrainedError`` when `c` describes another family's blocks, or needs more
    /// than `limit` weights (the checkpoint's files hold fewer: nothing is allocated for sizes
    /// the files cannot back).
    init(configuration c: LanguageModelConfiguration, threads: Int?, limit: Int = .max) throws(PretrainedError) {
        if let threads, threads < 1 { throw .argument(name: "threads", expected: "a positive count, got \(threads)") }
        guard let mixerConfiguration = Mixer.configuration(of: c.mixer) else {
            throw .argument(name: "configuration", expected: "a \(Mixer.architecture) configuration, got \(c.architecture)'s")
        }
        configuration = c
        let threads = threads ?? WorkerPool.onlineProcessorCount()
        self.threads = threads
        func makeMixer() throws(PretrainedError) -> Mixer {
            try rethrowingEngine { () throws(SSMError) in try Mixer(configuration: mixerConfiguration, threads: threads) }
        }
        // One block's mixer gives the layout; the others are made once the sizes are known to fit.
        var mixers = [try makeMixer()]
        layout = ParameterLayout(mixers[0].parameterDeclarations)
        let (V, M) = (c.vocabulary, c.width)
        // Sizes from a config.json are the file's word: every offset is computed with overflow
        // checks, and the total is held to `limit` before anything is allocated.
        func add(_ a: Int, _ b: Int) throws(PretrainedError) -> Int {
            let (sum, overflow) = a.addingReportingOverflow(b)
            guard !overflow, sum <= limit else {
                throw .argument(name: "configuration", expected: "sizes whose weights the checkpoint holds (at most \(limit) values), not more")
            }
            return sum
        }
        let (embedding, overflow) = V.multipliedReportingOverflow(by: M)
        guard !overflow else { throw .argument(name: "configuration", expected: "vocabulary × width that fits in memory, got \(V) × \(M)") }
        var offset = try add(0, embedding)
        embeddingOffset = 0
        var layerOffsets: [Int] = []
        for _ in 0 ..< c.layers {
            layerOffsets.append(offset)
            offset = try add(try add(offset, M), layout.count)
        }
        self.layerOffsets = layerOffsets
        normFOffset = offset
        offset = try add(offset, M)
        headOffset = c.tiedEmbeddings ? embeddingOffset : offset
        if !c.tiedEmbeddings { offset = try add(offset, embedding) }
        for _ in 1 ..< c.layers { mixers.append(try makeMixer()) }
        self.mixers = mixers
        // Every element is written by the loader before use (a failed load frees the buffer).
        weights = .allocate(capacity: offset)
    }

    deinit { weights.deallocate() }

    /// Loads a Hugging Face model folder (`config.json` with `model.safetensors` or its shards),
    /// converting the weights to `T`.
    ///
    /// The embedding is read as `backbone.embeddings.weight` or, from a converted mamba_ssm
    /// checkpoint, `backbone.embedding.weight`; `lm_head.weight` may be absent when the config
    /// ties it (and is then ignored if present, as it equals the embedding).
    /// - Throws: ``PretrainedError`` naming the file and field or tensor: a missing or
    ///   malformed config, an unsupported model type, a missing, misshapen, non-finite or
    ///   unexpected tensor.
    public convenience init(directory: String, threads: Int? = nil, decodeWeights: DecodeWeights = .native) throws(PretrainedError) {
        guard FileIO.isDirectory(directory) else { throw .unreadable(path: directory, reason: "not a folder") }
        let c = try LanguageModelConfiguration(contentsOf: directory + "/config.json")
        guard Mixer.configuration(of: c.mixer) != nil else {
            throw .field(file: directory + "/config.json", field: "model_type",
                         expected: "a \(Mixer.architecture) checkpoint, got a \(c.architecture)")
        }
        let files = try CheckpointFiles(folder: directory)
        // The weights the files hold bound what a model read from them may allocate: twice
        // their count (and 1M values), so that a missing or misshapen tensor is still reported
        // by name below, while sizes the files cannot back are refused before any allocation.
        let stored = files.tensors.values.reduce(0) { (total, t) in
            let (n, overflow) = t.entry.shape.reduce((1, false)) { (p, d) in
                let (m, o) = p.0.multipliedReportingOverflow(by: Swift.max(d, 0))
                return (m, p.1 || o)
            }
            return overflow ? Int.max : total.addingReportingOverflow(n).overflow ? Int.max : total + n
        }
        let slack = 1 << 20
        let (doubled, overflow) = stored.multipliedReportingOverflow(by: 2)
        try self.init(configuration: c, threads: threads, limit: overflow || doubled > Int.max - slack ? .max : doubled + slack)
        var used = Set<String>()
        func read(_ name: String, _ shape: [Int], at offset: Int) throws(PretrainedError) {
            let count = shape.reduce(1, *)
            try files.read(name, shape: shape, into: UnsafeMutableBufferPointer(rebasing: weights[offset ..< offset + count]))
            used.insert(name)
        }
        let (V, M) = (c.vocabulary, c.width)
        let embedding = files.tensors["backbone.embeddings.weight"] != nil ? "backbone.embeddings.weight" : "backbone.embedding.weight"
        try read(embedding, [V, M], at: embeddingOffset)
        for i in 0 ..< c.layers {
            try read("backbone.layers.\(i).norm.weight", [M], at: layerOffsets[i])
            for (k, d) in layout.declarations.enumerated() {
                try read(Self.mixerPrefix(i) + d.name, d.shape, at: layerOffsets[i] + M + layout.ranges[k].lowerBound)
            }
        }
        try read("backbone.norm_f.weight", [M], at: normFOffset)
        if c.tiedEmbeddings {
            if files.tensors["lm_head.weight"] != nil { used.insert("lm_head.weight") }
        } else {
            try read("lm_head.weight", [V, M], at: headOffset)
        }
        if let extra = files.tensors.keys.sorted().first(where: { !used.contains($0) }) {
            throw .tensor(file: files.tensors[extra]!.file.source, tensor: extra, expected: "no such tensor in a \(c.layers)-layer \(c.architecture)")
        }
        if decodeWeights == .bfloat16 {
            guard T.self == Float.self else { throw .argument(name: "decodeWeights", expected: "Float arithmetic for bfloat16 decode weights") }
            guard !Mixer.bfloat16Parameters.isEmpty else {
                throw .argument(name: "decodeWeights", expected: "native weights: a \(c.architecture) decodes in the model's precision")
            }
            decodeCopies = DecodeCopies(self)
        }
    }

    /// The bfloat16 copies: per block the mixer's ``LanguageMixer/bfloat16Parameters``, then
    /// the head.
    final class DecodeCopies: @unchecked Sendable {
        let storage: UnsafeMutableBufferPointer<UInt16>
        /// Per block, one pointer per parameter the mixer reads in bfloat16.
        let projections: [[UnsafePointer<UInt16>]]
        let head: UnsafePointer<UInt16>

        init(_ model: LanguageModel) {
            let c = model.configuration
            let indices = Mixer.bfloat16Parameters.map { model.layout.index(of: $0)! }
            let perLayer = indices.map { model.layout.ranges[$0].count }.reduce(0, +)
            let storage = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: c.layers * perLayer + c.vocabulary * c.width)
            var offset = 0
            func copy(_ source: UnsafePointer<T>, _ count: Int) -> UnsafePointer<UInt16> {
                let target = storage.baseAddress! + offset
                source.withMemoryRebound(to: Float.self, capacity: count) { f in
                    for k in 0 ..< count { target[k] = bfloat16(f[k]) }
                }
                offset += count
                return UnsafePointer(target)
            }
            var projections: [[UnsafePointer<UInt16>]] = []
            for i in 0 ..< c.layers {
                let view = model.mixerView(i)
                projections.append(indices.map { copy(view[$0].baseAddress!, view[$0].count) })
            }
            let head = copy(UnsafePointer(model.weights.baseAddress! + model.headOffset), c.vocabulary * c.width)
            (self.storage, self.projections, self.head) = (storage, projections, head)
        }

        deinit { storage.deallocate() }
    }

    /// The number of weights (the embedding counted once when the head is tied to it).
    public var weightCount: Int { weights.count }

    /// Bytes of weights one decoding step reads at batch 1: every weight once, except that an
    /// untied model reads one row of its embedding rather than all of it. Memory bandwidth over
    /// this is the decode speed's bound.
    public var bytesReadPerToken: Int {
        let c = configuration
        let embeddingRead = c.tiedEmbeddings ? c.vocabulary * c.width : c.width
        let all = (weights.count - c.vocabulary * c.width + embeddingRead) * MemoryLayout<T>.size
        guard let copies = decodeCopies else { return all }
        // The copied matrices are read at 2 bytes instead of 4.
        return all - copies.storage.count * 2
    }

    /// The view of block `i`'s mixer parameters.
    func mixerView(_ i: Int) -> ParameterView<T> {
        ParameterView(base: UnsafePointer(weights.baseAddress! + layerOffsets[i] + configuration.width), layout: layout)
    }

    /// The recurrent state of B sequences: every block's conv and SSM states, and how many
    /// tokens it has seen.
    public struct State: Sendable {
        public let batch: Int
        /// Block i's mixer state (Mamba: conv (B, E, K), ssm (B, E, N); Mamba-2: conv
        /// (B, E + 2GN, K), ssm (B, H, P, N)).
        public var layers: [Mixer.State]
        /// Tokens processed per sequence.
        public var tokens: Int
    }

    /// The zero state of `batch` sequences.
    public func makeState(batch: Int) throws(PretrainedError) -> State {
        guard batch >= 1 else { throw .argument(name: "batch", expected: "a positive count, got \(batch)") }
        var layers: [Mixer.State] = []
        for (i, m) in mixers.enumerated() {
            let view = mixerView(i)
            layers.append(try rethrowingEngine { () throws(SSMError) in try m.makeState(batch: batch, length: 1, parameters: view) })
        }
        return State(batch: batch, layers: layers, tokens: 0)
    }

    /// Every position's logits (B, L, V) of B sequences of L token ids (B, L), from the zero
    /// state: the model's full forward.
    public func logits(_ ids: [Int], batch B: Int, length L: Int) throws(PretrainedError) -> [T] {
        var state = try makeState(batch: B)
        return try run(ids, length: L, state: &state, chunk: L, allPositions: true)
    }

    /// Runs L tokens per sequence (ids (B, L)) through the scan from `state`, `chunk` tokens at
    /// a time with the state carried between chunks, and returns the last position's logits
    /// (B, V). `state` is left after the last token.
    public func prefill(_ ids: [Int], length L: Int, state: inout State, chunk: Int = 512) throws(PretrainedError) -> [T] {
        try run(ids, length: L, state: &state, chunk: chunk, allPositions: false)
    }

    /// One token per sequence (ids (B)) in step mode: the next logits (B, V).
    @_specialize(where Mixer == MambaMixer<Float>)
    @_specialize(where Mixer == MambaMixer<Double>)
    @_specialize(where Mixer == Mamba2Mixer<Float>)
    @_specialize(where Mixer == Mamba2Mixer<Double>)
    public func step(_ ids: [Int], state: inout State) throws(PretrainedError) -> [T] {
        let (B, M) = (state.batch, configuration.width)
        try check(ids, count: B, "ids")
        var h = [T](repeating: 0, count: B * M)
        gather(ids, into: &h)
        try blocks(&h, rows: B) { (i, x, y) throws(SSMError) in
            try mixers[i].step(&state.layers[i], x, parameters: mixerView(i), bfloat16: B == 1 ? decodeCopies?.projections[i] ?? [] : [], into: y)
        }
        state.tokens += 1
        return head(h, rows: B)
    }

    @_specialize(where Mixer == MambaMixer<Float>)
    @_specialize(where Mixer == MambaMixer<Double>)
    @_specialize(where Mixer == Mamba2Mixer<Float>)
    @_specialize(where Mixer == Mamba2Mixer<Double>)
    private func run(_ ids: [Int], length L: Int, state: inout State, chunk: Int, allPositions: Bool) throws(PretrainedError) -> [T] {
        let (B, M, V) = (state.batch, configuration.width, configuration.vocabulary)
        guard L >= 1 else { throw .argument(name: "length", expected: "at least 1 token, got \(L)") }
        guard chunk >= 1 else { throw .argument(name: "chunk", expected: "a positive token count, got \(chunk)") }
        try check(ids, count: B * L, "ids")
        var result = [T](repeating: 0, count: allPositions ? B * L * V : B * V)
        var start = 0
        while start < L {
            let C = min(chunk, L - start)
            var piece = [Int](repeating: 0, count: B * C)
            for b in 0 ..< B { for t in 0 ..< C { piece[b * C + t] = ids[b * L + start + t] } }
            var h = [T](repeating: 0, count: B * C * M)
            gather(piece, into: &h)
            let buffers = try rethrowingEngine { () throws(SSMError) in
                try passes.take(PassShape(batch: B, length: C)) { () throws(SSMError) in try mixers[0].makeInferenceActivations(batch: B, length: C) }
            }
            try blocks(&h, rows: B * C) { (i, x, y) throws(SSMError) in
                try mixers[i].prefill(x, length: C, parameters: mixerView(i), state: &state.layers[i], activations: buffers, into: y)
            }
            if allPositions {
                let logits = head(h, rows: B * C)
                for b in 0 ..< B {
                    for t in 0 ..< C {
                        let source = (b * C + t) * V, target = (b * L + start + t) * V
                        for v in 0 ..< V { result[target + v] = logits[source + v] }
                    }
                }
            } else if start + C == L {
                var last = [T](repeating: 0, count: B * M)
                for b in 0 ..< B { for j in 0 ..< M { last[b * M + j] = h[(b * C + C - 1) * M + j] } }
                result = head(last, rows: B)
            }
            start += C
        }
        state.tokens += L
        return result
    }

    /// The residual blocks over R rows of h (R, M): hᵢ = hᵢ₋₁ + mixᵢ(RMSNorm(hᵢ₋₁)), where
    /// `mix(i, x, y)` runs block i's mixer from x into y (scan mode or step mode).
    @_specialize(where Mixer == MambaMixer<Float>)
    @_specialize(where Mixer == MambaMixer<Double>)
    @_specialize(where Mixer == Mamba2Mixer<Float>)
    @_specialize(where Mixer == Mamba2Mixer<Double>)
    private func blocks(_ h: inout [T], rows R: Int,
                        _ mix: (Int, UnsafeBufferPointer<T>, UnsafeMutableBufferPointer<T>) throws(SSMError) -> Void) throws(PretrainedError) {
        var normed = [T](repeating: 0, count: R * configuration.width), out = normed
        var inverse = [Double](repeating: 0, count: R)
        for i in 0 ..< mixers.count {
            norm(h, weightOffset: layerOffsets[i], rows: R, into: &normed, &inverse)
            try rethrowingEngine { () throws(SSMError) in
                try normed.withUnsafeBufferPointer { (x: UnsafeBufferPointer<T>) throws(SSMError) in
                    try out.withUnsafeMutableBufferPointer { (y: inout UnsafeMutableBufferPointer<T>) throws(SSMError) in try mix(i, x, y) }
                }
            }
            for k in 0 ..< R * configuration.width { h[k] += out[k] }
        }
    }

    private func check(_ ids: [Int], count: Int, _ name: String) throws(PretrainedError) {
        guard ids.count == count else { throw .argument(name: name, expected: "\(count) token ids, got \(ids.count)") }
        let V = configuration.vocabulary
        if let bad = ids.first(where: { $0 < 0 || $0 >= V }) {
            throw .argument(name: name, expected: "token ids in 0 ..< \(V) (the vocabulary), got \(bad)")
        }
    }

    /// h (R, M) = embedding rows of `ids`.
    @_specialize(where Mixer == MambaMixer<Float>)
    @_specialize(where Mixer == MambaMixer<Double>)
    @_specialize(where Mixer == Mamba2Mixer<Float>)
    @_specialize(where Mixer == Mamba2Mixer<Double>)
    private func gather(_ ids: [Int], into h: inout [T]) {
        let M = configuration.width
        for (r, id) in ids.enumerated() {
            for j in 0 ..< M { h[r * M + j] = weights[embeddingOffset + id * M + j] }
        }
    }

    /// RMSNorm of R rows with the weight at `weightOffset`.
    @_specialize(where Mixer == MambaMixer<Float>)
    @_specialize(where Mixer == MambaMixer<Double>)
    @_specialize(where Mixer == Mamba2Mixer<Float>)
    @_specialize(where Mixer == Mamba2Mixer<Double>)
    private func norm(_ x: [T], weightOffset: Int, rows R: Int, into y: inout [T], _ inverse: inout [Double]) {
        let M = configuration.width
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                inverse.withUnsafeMutableBufferPointer { i in
                    RMSNorm.forward(x.baseAddress!, weight: UnsafePointer(weights.baseAddress! + weightOffset), y: y.baseAddress!,
                                    inverseRMS: i.baseAddress!, rows: R, channels: M, epsilon: configuration.normEpsilon)
                }
            }
        }
    }

    /// logits (R, V) = RMSNorm(h; norm_f) · headᵀ.
    @_specialize(where Mixer == MambaMixer<Float>)
    @_specialize(where Mixer == MambaMixer<Double>)
    @_specialize(where Mixer == Mamba2Mixer<Float>)
    @_specialize(where Mixer == Mamba2Mixer<Double>)
    private func head(_ h: [T], rows R: Int) -> [T] {
        let (M, V) = (configuration.width, configuration.vocabulary)
        var normed = [T](repeating: 0, count: R * M)
        var inverse = [Double](repeating: 0, count: R)
        norm(h, weightOffset: normFOffset, rows: R, into: &normed, &inverse)
        var logits = [T](repeating: 0, count: R * V)
        normed.withUnsafeBufferPointer { x in
            logits.withUnsafeMutableBufferPointer { out in
                let head = UnsafePointer(weights.baseAddress! + headOffset)
                if R == 1, let copies = decodeCopies {
                    BLAS.matvec(bfloat16: copies.head, rows: V, cols: M, UnsafeRawPointer(x.baseAddress!).assumingMemoryBound(to: Float.self),
                                into: UnsafeMutableRawPointer(out.baseAddress!).assumingMemoryBound(to: Float.self), threads: threads)
                } else if R == 1 {
                    BLAS.matvec(head, rows: V, cols: M, x.baseAddress!, into: out.baseAddress!, threads: threads)
                } else {
                    BLAS.matmul(x.baseAddress!, head, transposeB: true, m: R, n: V, k: M, into: out.baseAddress!, threads: threads)
                }
            }
        }
        return logits
    }
}

/// How step mode (decoding) reads the weights it streams each token.
public enum DecodeWeights: String, Sendable, CaseIterable {
    /// In the model's precision.
    case native
    /// As bfloat16 copies of the projections and the head (half the bytes of Float; the
    /// arithmetic stays Float). Exact for a checkpoint stored in BF16; otherwise each of
    /// those weights is rounded to 8 significant bits when decoding. Batch-1 steps only.
    case bfloat16
}

/// x rounded to bfloat16 (to nearest, ties to even; NaN kept a NaN).
func bfloat16(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(bits >> 16) | 0x40 }
    let rounding = 0x7FFF + ((bits >> 16) & 1)
    return UInt16((bits &+ rounding) >> 16)
}
