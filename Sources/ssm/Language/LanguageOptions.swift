import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import SSMKit
import SSMLanguage

/// The precision a pretrained model computes in.
enum ModelPrecision: String, ExpressibleByArgument, CaseIterable {
    case float32, float64
}

/// A command's work on a pretrained model of either family (Mamba or Mamba-2), in either precision.
protocol LanguageModelTask {
    func run<Mixer: LanguageMixer>(_ model: LanguageModel<Mixer>) throws
}

/// Loads the model in `directory` as the family its config.json names, computing in
/// `precision`, and runs `task` on it.
func withLanguageModel(_ directory: String, threads: Int?, precision: ModelPrecision, decodeWeights: DecodeWeights = .native,
                       _ task: some LanguageModelTask) throws {
    let family = try LanguageModelConfiguration(contentsOf: directory).mixer
    switch (family, precision) {
    case (.mamba, .float32): try task.run(MambaLanguageModel<Float>(directory: directory, threads: threads, decodeWeights: decodeWeights))
    case (.mamba, .float64): try task.run(MambaLanguageModel<Double>(directory: directory, threads: threads, decodeWeights: decodeWeights))
    case (.mamba2, .float32): try task.run(Mamba2LanguageModel<Float>(directory: directory, threads: threads, decodeWeights: decodeWeights))
    case (.mamba2, .float64): try task.run(Mamba2LanguageModel<Double>(directory: directory, threads: threads, decodeWeights: decodeWeights))
    }
}

/// Options of every command that loads a pretrained model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Hugging Face model folder: config.json and model.safetensors (or its shards).")
    var model: String

    @Option(name: .long, help: "tokenizer.json, or a folder holding it (default: the model folder's).")
    var tokenizer: String?

    @Option(name: .long, help: "Worker threads (default: all online processors).")
    var threads: Int?

    @Option(name: .long, help: "float32 (default) or float64: the precision the model computes in.")
    var precision: ModelPrecision = .float32

    @Option(name: .long, help: "native (default) or bfloat16: how decoding (float32, batch 1) reads the projections and the head.")
    var decodeWeights: DecodeWeights = .native

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads: expected a positive count, got \(threads)") }
        if decodeWeights == .bfloat16, precision != .float32 { throw ValidationError("--decode-weights bfloat16: needs --precision float32") }
    }

    /// Loads --model and runs `task` on it.
    func withModel(_ task: some LanguageModelTask) throws {
        try withLanguageModel(model, threads: threads, precision: precision, decodeWeights: decodeWeights, task)
    }

    /// Whether a tokenizer was named or the model folder holds one.
    var hasTokenizer: Bool { tokenizer != nil || FileIO.isRegularFile(model + "/tokenizer.json") }

    func loadTokenizer() throws -> Tokenizer {
        try Tokenizer(contentsOf: tokenizer ?? model + "/tokenizer.json")
    }
}

/// Parses "1,2,3" as token ids, naming `flag` on failure.
func parseIDs(_ text: String, flag: String) throws -> [Int] {
    var ids: [Int] = []
    for p in text.split(separator: ",", omittingEmptySubsequences: false) {
        guard let id = Int(String(p.filter { $0 != " " })), id >= 0 else {
            throw SSMError.option(name: flag, expected: "comma-separated non-negative token ids, got \"\(text)\"")
        }
        ids.append(id)
    }
    return ids
}

/// Writes `text` to standard output at once (unbuffered), for streamed tokens.
func writeOut(_ text: String) {
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { _ = write(1, $0.baseAddress, $0.count) }
}

extension DecodeWeights: ExpressibleByArgument {}
