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
