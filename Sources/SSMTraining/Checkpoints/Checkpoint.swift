#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SSMKit

/// Checkpoints: a directory with two safetensors files.
///
/// - `model.safetensors`: the parameters under their official PyTorch names and shapes (what
///   `model.state_dict()` holds, so `load_state_dict(safetensors.torch.load_file(...))` takes it),
///   and the model's configuration in the header's `__metadata__`.
/// - `optimizer.safetensors`: AdamW's `exp_avg.<name>` and `exp_avg_sq.<name>`, with the step,
///   the hyperparameters and the training run's settings in `__metadata__`.
///
/// The directory is written atomically: both files go to a new directory beside it, which then
/// takes the old one's place in one exchange, so a process killed at any point (or a full disk)
/// leaves the previous checkpoint whole and nothing partial under the final name. Both files
/// carry the step, and ``read(directory:as:configuration:)`` refuses a pair whose steps differ.
public enum Checkpoint {
    public static let modelFile = "model.safetensors"
    public static let optimizerFile = "optimizer.safetensors"

    /// What a checkpoint holds.
    public struct Contents<T: SSMScalar>: Sendable {
        public var configuration: ModelConfiguration
        public var parameters: ParameterSet<T>
        public var optimizer: AdamW<T>?
        /// The training run's settings (task, seed, steps, …) as written.
        public var run: [String: String]
    }

    /// Writes `parameters` (and `optimizer` with `run` when given) under `directory`,
    /// creating the directory if needed.
    public static func write<T: SSMScalar>(directory given: String, configuration: ModelConfiguration, parameters: ParameterSet<T>,
                                                   optimizer: AdamW<T>? = nil, run: [String: String] = [:]) throws {
        // `out/` names `out`; a symbolic link to a checkpoint names the folder it points to.
        var final = given
        while final.count > 1, final.hasSuffix("/") { final.removeLast() }
        if let resolved = realpath(final, nil) {
            final = String(cString: resolved)
            free(resolved)
        }
        let directory = "\(final).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        if mkdir(directory, 0o755) != 0 {
            throw SafeTensorsError.unwritable(source: final, reason: "cannot create the directory: \(String(cString: strerror(errno)))")
        }
        var written = false
        defer {
            if !written {
                for name in FileIO.entries(directory) { unlink(directory + "/" + name) }
                rmdir(directory)
            }
        }
        let step = "\(optimizer?.step ?? 0)"
        if let optimizer {
            let h = optimizer.hyperparameters
            var metadata = run
            metadata["step"] = step
            metadata["lr"] = "\(h.learningRate)"
            metadata["ssm_lr"] = "\(h.ssmLearningRate)"
            metadata["weight_decay"] = "\(h.weightDecay)"
            metadata["betas"] = "\(h.beta1),\(h.beta2)"
            metadata["eps"] = "\(h.epsilon)"
            var tensors: [(name: String, value: SafeTensorsValue)] = []
            for name in parameters.names {
                tensors.append(("exp_avg.\(name)", SafeTensorsValue(Tensor(shape: parameters.shapes[name]!, scalars: optimizer.m[name]))))
                tensors.append(("exp_avg_sq.\(name)", SafeTensorsValue(Tensor(shape: parameters.shapes[name]!, scalars: optimizer.v[name]))))
            }
            try SafeTensorsFile.write(tensors, metadata: metadata, to: "\(directory)/\(optimizerFile)")
        }
        var metadata = configuration.metadata
        metadata["step"] = step
        try SafeTensorsFile.write(parameters.names.map { ($0, SafeTensorsValue(Tensor(shape: parameters.shapes[$0]!, scalars: parameters[$0]))) },
                                  metadata: metadata, to: "\(directory)/\(modelFile)")
        do { try FileIO.replaceDirectory(final, with: directory, managed: [modelFile, optimizerFile]) } catch {
            throw SafeTensorsError.unwritable(source: given, reason: error.reason)
        }
        written = true
    }

    /// Reads a checkpoint directory, or a single model file (an official state_dict saved
    /// with safetensors) when `configuration` says what model it is. The optimizer is read
    /// when its file is present.
    /// - Throws: `SafeTensorsError` for unreadable or malformed files, `SSMError` for
    ///   parameters that do not fit the model (missing, extra, wrong shape, non-finite).
    public static func read<T: SSMScalar>(directory: String, as _: T.Type = T.self,
                                                  configuration given: ModelConfiguration? = nil) throws -> Contents<T> {
        let isFile = directory.hasSuffix(".safetensors")
        let modelPath = isFile ? directory : "\(directory)/\(modelFile)"
        let file = try SafeTensorsFile(path: modelPath)
        let configuration = try given ?? ModelConfiguration(metadata: file.metadata)
        let layout = try SequenceModel<T>(configuration: configuration, threads: 1).layout
        // load checks every name, shape and value against the model's layout.
        let parameters = try load(file, layout: layout, prefix: "")
        var optimizer: AdamW<T>? = nil
        var run: [String: String] = [:]
        let optimizerPath = "\(directory)/\(optimizerFile)"
        if !isFile, access(optimizerPath, F_OK) == 0 {
            let o = try SafeTensorsFile(path: optimizerPath)
            run = o.metadata
            guard o.metadata["step"] == file.metadata["step"], let stepText = o.metadata["step"], let step = Int(stepText) else {
                throw SSMError.value(argument: optimizerPath, expected: "the step of \(modelPath) (\(file.metadata["step"] ?? "none"))")
            }
            func number(_ key: String) throws -> Double {
                guard let text = o.metadata[key], let v = Double(text) else { throw SSMError.missing(argument: "\(optimizerPath): \(key)", expected: "a number") }
                return v
            }
            let betas = (o.metadata["betas"] ?? "").split(separator: ",").compactMap { Double($0) }
            guard betas.count == 2 else { throw SSMError.missing(argument: "\(optimizerPath): betas", expected: "two numbers") }
            let h = try AdamW<T>.Hyperparameters(learningRate: number("lr"), ssmLearningRate: number("ssm_lr"), weightDecay: number("weight_decay"),
                                                 beta1: betas[0], beta2: betas[1], epsilon: number("eps"))
            do {
                optimizer = try AdamW(h, step: step, m: load(o, layout: layout, prefix: "exp_avg."), v: load(o, layout: layout, prefix: "exp_avg_sq."))
            } catch let error as SSMError {
                throw error.renamingArguments(["exp_avg_sq": "\(optimizerPath): exp_avg_sq"])
            }
        }
        return Contents(configuration: configuration, parameters: parameters, optimizer: optimizer, run: run)
    }

    /// The tensors `prefix + name` of `file` for every name of `layout`, in its layout. The
    /// element count must match (a shape that differs only by size-1 axes, such as `inv_dt`
    /// stored as (H) instead of (H, 1), is accepted); extra tensors under the prefix are refused.
    /// Tensors named in `ignoring` may be present and are skipped.
    public static func load<T: SSMScalar>(_ file: SafeTensorsFile, layout: ParameterSet<T>, prefix: String = "",
                                                  ignoring: Set<String> = []) throws -> ParameterSet<T> {
        var out = ParameterSet<T>()
        for name in layout.names {
            guard file.entry(prefix + name) != nil else { throw SSMError.missing(argument: "\(file.source): \(prefix + name)", expected: "shape \(layout.shapes[name]!)") }
            let t = try file.tensor(prefix + name, as: T.self)
            let expected = layout.shapes[name]!
            guard t.shape.filter({ $0 != 1 }) == expected.filter({ $0 != 1 }) else {
                throw SSMError.shape(argument: "\(file.source): \(prefix + name)", expected: "\(expected)", actual: t.shape)
            }
            guard t.scalars.allSatisfy(\.isFinite) else { throw SSMError.value(argument: "\(file.source): \(prefix + name)", expected: "finite values") }
            out.add(name, shape: expected, group: layout.groups[name]!, values: t.scalars)
        }
        if let extra = file.entries.first(where: { !ignoring.contains($0.name) && $0.name.hasPrefix(prefix) && layout.shapes[String($0.name.dropFirst(prefix.count))] == nil }) {
            throw SSMError.unexpected(argument: "\(file.source): \(extra.name)", expected: "not a parameter of this model")
        }
        return out
    }
}
