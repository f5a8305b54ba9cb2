import SSMKit

/// The settings of a training run.
public struct TrainingConfiguration: Sendable, Equatable {
    public var steps: Int
    public var batch: Int
    public var learningRate: Double
    /// The SSM group's learning rate; nil: min(lr, 1e-3) for S4/S4D (the official examples),
    /// lr for Mamba.
    public var ssmLearningRate: Double?
    public var weightDecay: Double
    /// Warmup steps of the cosine schedule.
    public var warmup: Int
    /// Maximum global gradient norm (0: no clipping).
    public var clip: Double
    public var seed: UInt64
    /// Sequences in the validation set (synthetic tasks).
    public var validationSize: Int

    public init(steps: Int, batch: Int, learningRate: Double, ssmLearningRate: Double? = nil, weightDecay: Double = 0.01,
                warmup: Int? = nil, clip: Double = 1, seed: UInt64 = 0, validationSize: Int = 512) throws(SSMError) {
        guard steps >= 1 else { throw SSMError.option(name: "steps", expected: "at least 1, got \(steps)") }
        guard batch >= 1 else { throw SSMError.option(name: "batch", expected: "at least 1, got \(batch)") }
        guard learningRate.isFinite, learningRate > 0 else { throw SSMError.option(name: "learningRate", expected: "a finite rate > 0, got \(learningRate)") }
        guard clip.isFinite, clip >= 0 else { throw SSMError.option(name: "clip", expected: "a finite norm ≥ 0, got \(clip)") }
        guard validationSize >= 1 else { throw SSMError.option(name: "validationSize", expected: "at least 1, got \(validationSize)") }
        let warmup = warmup ?? min(steps / 10, 100)
        guard warmup >= 0, warmup <= steps else { throw SSMError.option(name: "warmup", expected: "0 … steps, got \(warmup)") }
        (self.steps, self.batch, self.learningRate, self.ssmLearningRate, self.weightDecay) = (steps, batch, learningRate, ssmLearningRate, weightDecay)
        (self.warmup, self.clip, self.seed, self.validationSize) = (warmup, clip, seed, validationSize)
    }

    /// The settings as flat string pairs (stored with the optimizer in a checkpoint).
    public var metadata: [String: String] {
        ["steps": "\(steps)", "batch": "\(batch)", "warmup": "\(warmup)", "clip": "\(clip)", "seed": "\(seed)",
         "validation_size": "\(validationSize)"]
    }
}

/// Loss and accuracy over a set of sequences.
public struct Evaluation: Sendable, Equatable {
    public let loss: Double
    public let correct: Int
    public let counted: Int
    public var accuracy: Double { counted == 0 ? 0 : Double(correct) / Double(counted) }
}

/// One training step's figures.
public struct StepReport: Sendable {
    public let step: Int
    public let loss: Double
    public let accuracy: Double
    public let gradientNorm: Double
    public let learningRateFactor: Double
}

/// Trains a ``SequenceModel`` on a ``TrainingTask``: each step draws batch `step` of the run's seed,
/// runs forward, the loss, backward into explicitly zeroed gradients, clipping, and AdamW with
/// the cosine schedule. Everything is a function of (seed, step), so a run resumed from a
/// checkpoint continues bit for bit as if it had not stopped.
public struct Trainer<T: SSMScalar>: Sendable {
    public let model: SequenceModel<T>
    public let task: TrainingTask
    public let configuration: TrainingConfiguration
    public internal(set) var parameters: ParameterSet<T>
    public internal(set) var optimizer: AdamW<T>
    public let schedule: CosineSchedule
    var gradients: ParameterSet<T>

    /// A fresh run: parameters from `configuration.seed`.
    public init(model: SequenceModel<T>, task: TrainingTask, configuration: TrainingConfiguration) throws(SSMError) {
        let parameters = try model.initialParameters(seed: configuration.seed)
        // The official S4 examples cap the SSM parameters' rate at 1e-3; Mamba trains them at the base rate.
        let ssmRate = configuration.ssmLearningRate ?? (model.backbone == .mamba ? configuration.learningRate : min(configuration.learningRate, 1e-3))
        let h = try AdamW<T>.Hyperparameters(learningRate: configuration.learningRate, ssmLearningRate: ssmRate, weightDecay: configuration.weightDecay)
        try self.init(model: model, task: task, configuration: configuration, parameters: parameters, optimizer: AdamW(h, layout: parameters))
    }

    /// A run from given parameters and optimizer state (a checkpoint).
    public init(model: SequenceModel<T>, task: TrainingTask, configuration: TrainingConfiguration, parameters: ParameterSet<T>,
                optimizer: AdamW<T>) throws(SSMError) {
        try model.check(parameters)
        guard task.input == model.input, task.output == model.output else {
            throw SSMError.option(name: "task", expected: "a task whose inputs and outputs fit the model")
        }
        (self.model, self.task, self.configuration, self.parameters, self.optimizer) = (model, task, configuration, parameters, optimizer)
        schedule = try CosineSchedule(warmup: configuration.warmup, total: configuration.steps)
        gradients = parameters.zeros()
    }

    /// Steps taken so far.
    public var step: Int { optimizer.step }

    /// One step: forward, loss, backward, clip, AdamW.
    /// - Throws: `SSMError` if the loss is not finite (the run diverged).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public mutating func trainStep() throws(SSMError) -> StepReport {
        let t = optimizer.step + 1
        let batch = task.trainingBatch(size: configuration.batch, seed: configuration.seed, index: t)
        let activations = try model.forwardInPlace(batch, parameters: parameters, dropoutSeed: configuration.seed &+ UInt64(t))
        let rows = model.outputRows(batch: batch.batch, length: batch.length)
        let result = task.loss.evaluate(activations.outputs, targets: batch.targets, rows: rows, classes: model.output.classes,
                                        into: activations.dOutputs)
        guard result.loss.isFinite else { throw SSMError.value(argument: "loss", expected: "a finite loss at step \(t) (a lower learningRate may help)") }
        gradients.zero()
        try model.backward(activations: activations, parameters: parameters, gradients: &gradients)
        let norm = configuration.clip > 0 ? gradients.clipNorm(maximum: configuration.clip) : .nan
        let factor = schedule.factor(step: t)
        optimizer.update(&parameters, gradients: gradients, scale: factor)
        return StepReport(step: t, loss: result.loss, accuracy: Double(result.correct) / Double(max(result.counted, 1)),
                          gradientNorm: norm, learningRateFactor: factor)
    }

    /// Loss and accuracy on the validation set, in convolution mode or (S4/S4D) recurrent
    /// mode, in slices of `slice` sequences.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func evaluate(recurrent: Bool = false, slice: Int = 64) throws(SSMError) -> Evaluation {
        let all = task.validationBatch(size: configuration.validationSize, seed: configuration.seed)
        var loss = 0.0, correct = 0, counted = 0
        let (L, K) = (all.length, model.output.classes)
        let perToken = model.outputRows(batch: 1, length: L) == L
        var start = 0
        while start < all.batch {
            let end = min(start + slice, all.batch)
            let part = SequenceBatch(batch: end - start, length: L, tokens: all.tokens.map { Array($0[start * L ..< end * L]) },
                                     features: all.features.map { f in Array(f[f.count / all.batch * start ..< f.count / all.batch * end]) },
                                     targets: perToken ? Array(all.targets[start * L ..< end * L]) : Array(all.targets[start ..< end]))
            let outputs = recurrent ? try model.forwardRecurrent(part, parameters: parameters) : try model.forward(part, parameters: parameters).outputs
            let r: Loss.Result<T> = task.loss.evaluate(outputs, targets: part.targets, rows: model.outputRows(batch: part.batch, length: L), classes: K)
            loss += r.loss * Double(r.counted)
            correct += r.correct
            counted += r.counted
            start = end
        }
        return Evaluation(loss: loss / Double(max(counted, 1)), correct: correct, counted: counted)
    }
}
