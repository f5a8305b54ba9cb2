import SSMKit
import SSMTraining

/// A generation's recurrent state saved to a safetensors file, so that a long prompt is
/// processed once and continued later (`ssm generate --save-state`, `--load-state`).
///
/// Tensors: `conv_state.{i}` and `ssm_state.{i}` for every block i, as the model's step mode
/// keeps them (and as transformers' caches do): Mamba (B, E, K) and (B, E, N), Mamba-2
/// (B, E + 2GN, K) and (B, H, P, N); `next_logits` (B, V),
/// the logits that predict the next token; `history` (B, L) I64, the tokens each sequence has
/// seen (for the repetition penalty), padded with zeros after the first `history_lengths` (B)
/// I64 of its row, as sequences may differ in length (prompts of several lengths, or one that
/// stopped early). Metadata records the model's sizes, checked on loading. A file without
/// `history_lengths` holds full rows.
public enum RecurrentStateFile {
    static let format = "ssmkit-recurrent-state-2"

    /// The model's sizes that a state depends on, and the token count.
    static func metadata<Mixer>(_ model: LanguageModel<Mixer>, tokens: Int) -> [String: String] {
        let c = model.configuration
        let shapes = model.mixers[0].stateShapes(batch: 1)
        let sizes = { (shape: [Int]) in shape.dropFirst().map(String.init).joined(separator: ",") }
        return ["format": format, "architecture": c.architecture, "layers": "\(c.layers)", "width": "\(c.width)",
                "conv_state": sizes(shapes.conv), "ssm_state": sizes(shapes.ssm), "vocabulary": "\(c.vocabulary)", "tokens": "\(tokens)"]
    }

    /// Writes `start` of `model` to `path` (atomically: on failure nothing is left at `path`).
    public static func write<Mixer>(_ start: Generator<Mixer>.Start, of model: LanguageModel<Mixer>, to path: String) throws(PretrainedError) {
        let (B, V) = (start.state.batch, model.configuration.vocabulary)
        let shapes = model.mixers[0].stateShapes(batch: B)
        guard start.history.count == B, start.nextLogits.count == B * V else {
            throw .argument(name: "start", expected: "\(B) histories and (B, V) = (\(B), \(V)) next logits, got \(start.history.count) and \(start.nextLogits.count)")
        }
        let length = start.history.map(\.count).max() ?? 0
        let padded = start.history.flatMap { $0 + [Int](repeating: 0, count: length - $0.count) }
        var tensors: [(name: String, value: SafeTensorsValue)] = []
        for (i, layer) in start.state.layers.enumerated() {
            tensors.append(("conv_state.\(i)", .init(Tensor(shape: shapes.conv, scalars: layer.conv))))
            tensors.append(("ssm_state.\(i)", .init(Tensor(shape: shapes.ssm, scalars: layer.ssm))))
        }
        tensors.append(("next_logits", .init(Tensor(shape: [B, V], scalars: start.nextLogits))))
        tensors.append(("history", .int64(shape: [B, length], values: padded)))
        tensors.append(("history_lengths", .int64(shape: [B], values: start.history.map(\.count))))
        do { try SafeTensorsFile.write(tensors, metadata: metadata(model, tokens: start.state.tokens), to: path) } catch {
            throw .unwritable(path: path, reason: error.description)
        }
    }

    /// Reads a state written by ``write(_:of:to:)`` for `model`.
    /// - Throws: ``PretrainedError`` when the file is unreadable, was saved by a model of other
    ///   sizes, or holds a non-finite state or logit, or a history that does not fit.
    public static func read<Mixer>(_ path: String, for model: LanguageModel<Mixer>) throws(PretrainedError) -> Generator<Mixer>.Start {
        typealias T = Mixer.Scalar
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw .safetensors(error) }
        let c = model.configuration
        let expected = metadata(model, tokens: 0)
        for (key, value) in expected where key != "tokens" {
            guard file.metadata[key] == value else {
                throw .field(file: path, field: "__metadata__.\(key)",
                             expected: "\(value) (the loaded model's), got \(file.metadata[key] ?? "nothing")")
            }
        }
        guard let tokens = file.metadata["tokens"].flatMap({ Int($0) }), tokens >= 0 else {
            throw .field(file: path, field: "__metadata__.tokens", expected: "a token count")
        }
        func floats(_ name: String, _ shape: (Int) -> [Int]) throws(PretrainedError) -> (batch: Int, values: [T]) {
            guard let e = file.entry(name) else { throw .tensor(file: path, tensor: name, expected: "present") }
            guard let b = e.shape.first, b >= 1, e.shape == shape(b) else { throw .tensor(file: path, tensor: name, expected: "shape \(shape(1)) with B ≥ 1 first, got \(e.shape)") }
            let values: [T]
            do { values = try file.tensor(name, as: T.self).scalars } catch { throw .safetensors(error) }
            guard allFinite(values) else { throw .tensor(file: path, tensor: name, expected: "finite values") }
            return (b, values)
        }
        let V = c.vocabulary
        let (B, logits) = try floats("next_logits") { [$0, V] }
        let shapes = model.mixers[0].stateShapes(batch: B)
        var layers: [Mixer.State] = []
        for i in 0 ..< c.layers {
            let conv = try floats("conv_state.\(i)") { _ in shapes.conv }, ssm = try floats("ssm_state.\(i)") { _ in shapes.ssm }
            layers.append(try rethrowingEngine { () throws(SSMError) in try model.mixers[i].makeState(batch: B, conv: conv.values, ssm: ssm.values) })
        }
        let history: (shape: [Int], values: [Int])
        do { history = try file.integers("history") } catch { throw .safetensors(error) }
        guard history.shape.count == 2, history.shape[0] == B else { throw .tensor(file: path, tensor: "history", expected: "shape (\(B), L)") }
        if let bad = history.values.first(where: { $0 < 0 || $0 >= V }) {
            throw .tensor(file: path, tensor: "history", expected: "token ids in 0 ..< \(V), got \(bad)")
        }
        let L = history.shape[1]
        var lengths = [Int](repeating: L, count: B)
        if file.entry("history_lengths") != nil {
            let given: (shape: [Int], values: [Int])
            do { given = try file.integers("history_lengths") } catch { throw .safetensors(error) }
            guard given.shape == [B], given.values.allSatisfy({ (0 ... L).contains($0) }) else {
                throw .tensor(file: path, tensor: "history_lengths", expected: "shape (\(B)) of lengths in 0 ... \(L), got shape \(given.shape)")
            }
            lengths = given.values
        }
        return Generator<Mixer>.Start(state: LanguageModel<Mixer>.State(batch: B, layers: layers, tokens: tokens), nextLogits: logits,
                                      history: (0 ..< B).map { Array(history.values[$0 * L ..< $0 * L + lengths[$0]]) })
    }
}
