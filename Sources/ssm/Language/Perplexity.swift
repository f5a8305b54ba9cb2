import ArgumentParser
import SSMKit
import SSMLanguage

/// `ssm perplexity`: sliding-window perplexity of a text under a pretrained model.
struct Perplexity: ParsableCommand, LanguageModelTask {
    static let configuration = CommandConfiguration(
        abstract: "Perplexity of a text file under a pretrained Mamba or Mamba-2 model (the standard sliding window).",
        discussion: """
        The text is tokenized whole; windows of --context tokens start every --stride tokens \
        (default: the context), each from the zero state. A window scores the tokens past the \
        previous window's end, each from the window's tokens before it: with --stride below \
        --context every token but the first is scored once; with --stride equal to --context \
        the first token of each window (the tokens at multiples of the context) is not scored. \
        Prints the perplexity, the tokens scored and the tokens processed per second; with \
        --json one JSON object.
        """
    )

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "UTF-8 text file.")
    var text: String

    @Option(name: .long, help: "Window length in tokens.")
    var context = 1024

    @Option(name: .long, help: "Tokens between window starts (≤ context).")
    var stride: Int?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() throws { try model.withModel(self) }

    func run<Mixer: LanguageMixer>(_ lm: LanguageModel<Mixer>) throws {
        let tokenizer = try model.loadTokenizer()
        let ids = tokenizer.encode(String(decoding: try FileIO.readAll(text), as: UTF8.self))
        var result: PerplexityResult?
        let time = try seconds { result = try lm.perplexity(ids, context: context, stride: stride) }
        let r = result!
        let rate = Double(r.processedTokens) / time
        if json {
            print(jsonLine([("perplexity", r.perplexity), ("tokens", ids.count), ("scored_tokens", r.scoredTokens),
                            ("negative_log_likelihood", r.negativeLogLikelihood), ("context", context), ("stride", stride ?? context),
                            ("seconds", time), ("tokens_per_second", rate), ("threads", lm.threads)]))
        } else {
            print("perplexity \(formatFixed(r.perplexity, 4)) over \(r.scoredTokens) tokens (context \(context), stride \(stride ?? context)); "
                + "\(formatFixed(rate, 1)) tokens/s")
        }
    }
}
