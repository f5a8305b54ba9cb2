import ArgumentParser
import SSMKit
import SSMLanguage

/// `ssm generate`: text generation with a Hugging Face Mamba checkpoint.
struct Generate: ParsableCommand, LanguageModelTask {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with a pretrained Mamba or Mamba-2 model (prefill by the scan, decode in step mode).",
        discussion: """
        The prompt is prefilled with the scan in chunks of --prefill-chunk tokens (the state \
        carried), then each new token is one recurrent step. Greedy with --temperature 0 (the \
        default); otherwise repetition penalty, temperature, top-k, top-p and min-p in that order, \
        drawn with --seed. Stops at the model's EOS token or after --max-new-tokens. Give \
        --prompt (or --prompt-ids) several times for a batch. The text of one sequence is \
        streamed to stdout as it is produced; with --json the last line is one JSON object: ids, \
        text, prompt_tokens, new_tokens, prefill_tokens_per_second, decode_tokens_per_second \
        (and for a batch, ids and text per sequence). --save-state writes the state after the \
        run; --load-state continues from one (with an optional further prompt).
        """
    )

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "Prompt text (repeat for a batch).")
    var prompt: [String] = []

    @Option(name: .long, help: "Prompt token ids, comma-separated (repeat for a batch).")
    var promptIds: [String] = []

    @Option(name: .long, help: "New tokens at most.")
    var maxNewTokens = 64

    @Option(name: .long, help: "0 for greedy decoding; > 0 samples.")
    var temperature = 0.0

    @Option(name: .long, help: "Keep the k most likely tokens.")
    var topK: Int?

    @Option(name: .long, help: "Keep the most likely tokens up to this probability mass.")
    var topP: Double?

    @Option(name: .long, help: "Keep tokens at least this fraction as likely as the most likely.")
    var minP: Double?

    @Option(name: .long, help: "Penalty on tokens already seen (1 = none).")
    var repetitionPenalty = 1.0

    @Option(name: .long, help: "Seed of the sampler (sequence b uses seed + b).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Prompt tokens per scan chunk of the prefill.")
    var prefillChunk = 512

    @Option(name: .long, help: "Write the recurrent state after the run to this safetensors file.")
    var saveState: String?

    @Option(name: .long, help: "Continue from a state written by --save-state.")
    var loadState: String?

    @Flag(name: .long, help: "Print one JSON object as the last line (nothing is streamed).")
    var json = false

    func validate() throws {
        if !prompt.isEmpty, !promptIds.isEmpty { throw ValidationError("give --prompt or --prompt-ids, not both") }
        if prompt.isEmpty, promptIds.isEmpty, loadState == nil { throw ValidationError("give --prompt, --prompt-ids or --load-state") }
    }

    func run() throws { try model.withModel(self) }

    func run<Mixer: LanguageMixer>(_ lm: LanguageModel<Mixer>) throws {
        // Text needs the tokenizer; with --prompt-ids and --json it is optional (the JSON then
        // carries text when the model folder has one).
        let needsTokenizer = !prompt.isEmpty || !json || promptIds.isEmpty
        let tokenizer: Tokenizer? = needsTokenizer || model.hasTokenizer ? try model.loadTokenizer() : nil
        var prompts: [[Int]] = try promptIds.map { try parseIDs($0, flag: "--prompt-ids") }
        if let tokenizer { prompts += prompt.map(tokenizer.encode) }
        let start = try loadState.map { try RecurrentStateFile.read($0, for: lm) }
        if prompts.isEmpty, let start { prompts = Array(repeating: [], count: start.state.batch) }
        let options = try GenerationOptions(
            maxNewTokens: maxNewTokens,
            sampling: SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP, repetitionPenalty: repetitionPenalty, seed: seed),
            prefillChunk: prefillChunk)
        let stream = !json && prompts.count == 1
        var decoder = tokenizer.map(StreamingDecoder.init)
        // A model's vocabulary may be padded beyond its tokenizer's (mamba-130m: 50280 rows for
        // 50277 tokens): such ids decode to nothing, as the tokenizers library skips them.
        let known = { (id: Int) in tokenizer.map { id < $0.vocabularySize } ?? false }
        let result = try Generator(model: lm).generate(prompts, options: options, from: start) { _, id in
            if stream, known(id), var d = decoder {
                if let piece = try? d.append(id) { writeOut(piece) }
                decoder = d
            }
            return true
        }
        if stream, var d = decoder { writeOut(d.finish() + "\n") }
        let texts = try tokenizer.map { t in try result.ids.map { try t.decode($0.filter(known)) } }
        if json {
            var fields: [(String, Any)] = []
            if prompts.count == 1 {
                fields.append(("ids", result.ids[0]))
                if let texts { fields.append(("text", texts[0])) }
            } else {
                fields.append(("ids", result.ids))
                if let texts { fields.append(("text", texts)) }
            }
            fields += [("prompt_tokens", result.promptTokens.reduce(0, +)), ("new_tokens", result.ids.map(\.count).reduce(0, +)),
                       ("prefill_tokens_per_second", result.prefillTokensPerSecond), ("decode_tokens_per_second", result.decodeTokensPerSecond),
                       ("batch", prompts.count), ("threads", lm.threads), ("precision", model.precision.rawValue)]
            print(jsonLine(fields))
        } else {
            if !stream, let texts { for (b, text) in texts.enumerated() { print("[\(b)] \(text)") } }
            printErrorLine("\(result.promptTokens.reduce(0, +)) prompt tokens at \(formatFixed(result.prefillTokensPerSecond, 1)) tokens/s, "
                + "\(result.ids.map(\.count).reduce(0, +)) new at \(formatFixed(result.decodeTokensPerSecond, 1)) tokens/s")
        }
        // After the output, so that a state that cannot be written does not cost the run's text.
        if let saveState {
            try RecurrentStateFile.write(Generator<Mixer>.Start(state: result.state, nextLogits: result.nextLogits, history: result.history),
                                         of: lm, to: saveState)
        }
    }
}
