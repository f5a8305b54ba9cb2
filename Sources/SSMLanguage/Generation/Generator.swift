import SSMKit
import SSMTraining

/// What to generate and when to stop.
public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int
    public var sampling: SamplingOptions
    /// Tokens that end a sequence (default: the model's EOS, when it has one); the stop token
    /// is part of the output.
    public var stopTokens: Set<Int>?
    /// Prompt tokens per scan chunk of the prefill (the state is carried between chunks).
    public var prefillChunk: Int

    public init(maxNewTokens: Int = 64, sampling: SamplingOptions? = nil, stopTokens: Set<Int>? = nil,
                prefillChunk: Int = 512) throws(PretrainedError) {
        guard maxNewTokens >= 0 else { throw .argument(name: "max-new-tokens", expected: "a count ≥ 0, got \(maxNewTokens)") }
        guard prefillChunk >= 1 else { throw .argument(name: "prefill-chunk", expected: "a positive token count, got \(prefillChunk)") }
        self.maxNewTokens = maxNewTokens
        if let sampling { self.sampling = sampling } else { self.sampling = try SamplingOptions() }
        self.stopTokens = stopTokens
        self.prefillChunk = prefillChunk
    }
}

/// What ``Generator/generate(_:options:from:onToken:)`` returns.
public struct GenerationResult<Mixer: LanguageMixer>: Sendable {
    public typealias T = Mixer.Scalar
    /// The new tokens of each sequence (a stop token included).
    public var ids: [[Int]]
    /// Prompt tokens prefilled per sequence.
    public var promptTokens: [Int]
    /// Every sequence's tokens: the loaded state's history, the prompt, the output.
    public var history: [[Int]]
    /// The state after the last token fed to the model, with the logits that predict the next
    /// one: what ``RecurrentStateFile`` saves so that a long prompt is processed once.
    public var state: LanguageModel<Mixer>.State
    public var nextLogits: [T]
    public var prefillSeconds: Double
    public var decodeSeconds: Double

    /// Prompt tokens per second of prefill (all sequences).
    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens.reduce(0, +)) / prefillSeconds : 0 }
    /// New tokens per second of decoding (all sequences): each new token is drawn and then
    /// fed back through one step, so that the final state has seen it.
    public var decodeTokensPerSecond: Double {
        decodeSeconds > 0 ? Double(ids.map(\.count).reduce(0, +)) / decodeSeconds : 0
    }
}

/// Text generation with a Mamba or Mamba-2 language model: the prompt is prefilled with the scan in
/// chunks (state carried), then each new token is one step of the recurrent mode, whose
/// logits are computed for that position only.
public struct Generator<Mixer: LanguageMixer>: Sendable {
    public typealias T = Mixer.Scalar
    public let model: LanguageModel<Mixer>

    public init(model: LanguageModel<Mixer>) { self.model = model }

    /// A saved point to continue from: a state, the logits it predicts next with, and the
    /// tokens that led there (for the repetition penalty).
    public struct Start: Sendable {
        public var state: LanguageModel<Mixer>.State
        public var nextLogits: [T]
        public var history: [[Int]]

        public init(state: LanguageModel<Mixer>.State, nextLogits: [T], history: [[Int]]) {
            (self.state, self.nextLogits, self.history) = (state, nextLogits, history)
        }
    }

    /// Generates a continuation of each prompt (token ids; prompts may differ in length, and
    /// may be empty when `start` is given). `onToken(sequence, id)` is called as each token is
    /// chosen; returning false stops every sequence there: that token is the last one drawn
    /// (it is fed through the model, so the final state has seen it), and no sequence draws
    /// another.
    @_specialize(where Mixer == MambaMixer<Float>)
    @_specialize(where Mixer == MambaMixer<Double>)
    @_specialize(where Mixer == Mamba2Mixer<Float>)
    @_specialize(where Mixer == Mamba2Mixer<Double>)
    public func generate(_ prompts: [[Int]], options: GenerationOptions, from start: Start? = nil,
                         onToken: (Int, Int) -> Bool = { _, _ in true }) throws(PretrainedError) -> GenerationResult<Mixer> {
        let (V, B) = (model.configuration.vocabulary, prompts.count)
        guard B >= 1 else { throw .argument(name: "prompts", expected: "at least one prompt") }
        if let start {
            guard start.state.batch == B, start.history.count == B, start.nextLogits.count == B * V else {
                throw .argument(name: "state", expected: "a saved state of \(B) sequence(s) and vocabulary \(V)")
            }
        } else if let empty = prompts.firstIndex(where: \.isEmpty) {
            throw .argument(name: "prompts[\(empty)]", expected: "at least one token (or a saved state to continue)")
        }
        let clock = ContinuousClock()
        let began = clock.now

        // Prefill each prompt on its own (they may differ in length), then gather the states.
        var state: LanguageModel<Mixer>.State
        if let start { state = start.state } else { state = try model.makeState(batch: B) }
        var logits = start?.nextLogits ?? [T](repeating: 0, count: B * V)
        var history = start?.history ?? Array(repeating: [], count: B)
        for (b, prompt) in prompts.enumerated() where !prompt.isEmpty {
            var one = state.row(b)
            let last = try model.prefill(prompt, length: prompt.count, state: &one, chunk: options.prefillChunk)
            state.setRow(b, one)
            for v in 0 ..< V { logits[b * V + v] = last[v] }
            history[b] += prompt
        }
        let prefilled = clock.now

        let stops = options.stopTokens ?? model.configuration.eosTokenID.map { [$0] } ?? []
        var samplers = (0 ..< B).map { b in
            var o = options.sampling
            o.seed = options.sampling.seed &+ UInt64(b)
            return Sampler(o)
        }
        var output = Array(repeating: [Int](), count: B)
        var done = [Bool](repeating: false, count: B)
        // A sequence that stops keeps the state and logits it had then (the others go on).
        var finishedRows: [Int: (state: LanguageModel<Mixer>.State, logits: [T])] = [:]
        let decodeStart = clock.now
        var stopped = options.maxNewTokens == 0
        while !stopped, !done.allSatisfy({ $0 }) {
            var next = [Int](repeating: model.configuration.padTokenID ?? 0, count: B)
            var drew = [Bool](repeating: false, count: B)
            for b in 0 ..< B where !done[b] {
                let id = samplers[b].next(logits[b * V ..< (b + 1) * V], history: history[b])
                (next[b], done[b], drew[b]) = (id, stops.contains(id) || output[b].count + 1 == options.maxNewTokens, true)
                output[b].append(id)
                history[b].append(id)
                if !onToken(b, id) {
                    stopped = true
                    break
                }
            }
            // Sequences that drew nothing this round (the callback stopped the run first) keep
            // their state and logits: the step below feeds them a padding token.
            for b in 0 ..< B where !done[b] && !drew[b] { finishedRows[b] = (state.row(b), Array(logits[b * V ..< (b + 1) * V])) }
            let newlyDone = (0 ..< B).filter { done[$0] && finishedRows[$0] == nil }
            logits = try model.step(next, state: &state)
            for b in newlyDone { finishedRows[b] = (state.row(b), Array(logits[b * V ..< (b + 1) * V])) }
        }
        for (b, saved) in finishedRows {
            state.setRow(b, saved.state)
            for v in 0 ..< V { logits[b * V + v] = saved.logits[v] }
        }
        let finished = clock.now
        return GenerationResult(ids: output, promptTokens: prompts.map(\.count), history: history, state: state, nextLogits: logits,
                                prefillSeconds: (prefilled - began).seconds, decodeSeconds: (finished - decodeStart).seconds)
    }
}

extension LanguageModel.State {
    /// Sequence b's state alone (batch 1).
    func row(_ b: Int) -> LanguageModel.State {
        LanguageModel.State(batch: 1, layers: layers.map { $0.rows(b ..< b + 1) }, tokens: tokens)
    }

    /// Replaces sequence b's state with `one` (batch 1).
    mutating func setRow(_ b: Int, _ one: LanguageModel.State) {
        for i in layers.indices { layers[i].setRows(b ..< b + 1, from: one.layers[i]) }
        tokens = max(tokens, one.tokens)
    }
}
