import ArgumentParser
import SSMKit
import SSMLanguage

/// `ssm eval lm`: a pretrained model's full forward, for comparison with PyTorch.
struct EvalLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "A pretrained Mamba or Mamba-2 model's logits for every position.",
        discussion: """
        in: input_ids (B, L), I64 or I32. out: logits (B, L, V) in F32, from the model's full \
        forward in --precision (float32 by default).
        """
    )

    @Option(name: .long, help: "Hugging Face model folder.")
    var model: String

    @Option(name: .long, help: "Input safetensors file with input_ids.")
    var input: String

    @Option(name: .long, help: "Output safetensors file (written atomically).")
    var output: String

    @Option(name: .long, help: "Worker threads (default: all online processors).")
    var threads: Int?

    @Option(name: .long, help: "float32 (default) or float64.")
    var precision: ModelPrecision = .float32

    func run() throws {
        let file = try SafeTensorsFile(path: input)
        guard let entry = file.entry("input_ids") else { throw SafeTensorsError.missingTensor(source: input, tensor: "input_ids") }
        guard entry.dtype == .i64 || entry.dtype == .i32 else {
            throw SSMError.option(name: "input_ids", expected: "an I64 or I32 tensor, got \(entry.dtype.rawValue)")
        }
        if let extra = file.names.first(where: { $0 != "input_ids" }) {
            throw SSMError.unexpected(argument: extra, expected: "ssm eval lm reads input_ids only")
        }
        let (shape, ids) = try file.integers("input_ids")
        guard shape.count == 2, shape[0] >= 1, shape[1] >= 1 else {
            throw SSMError.shape(argument: "input_ids", expected: "(B, L) with B, L ≥ 1", actual: shape)
        }
        try withLanguageModel(model, threads: threads, precision: precision, Forward(ids: ids, shape: shape, output: output))
    }

    /// The forward of one model, written to `output`.
    struct Forward: LanguageModelTask {
        let ids: [Int], shape: [Int], output: String

        func run<Mixer: LanguageMixer>(_ lm: LanguageModel<Mixer>) throws {
            let logits = try lm.logits(ids, batch: shape[0], length: shape[1]).map { Float($0) }
            let V = lm.configuration.vocabulary
            try SafeTensorsFile.write([("logits", .float32(Tensor(shape: shape + [V], scalars: logits)))], to: output)
        }
    }
}
