import SSMKit

/// The settings of a training run.
public struct TrainingConfiguration: Sendable, Equatable {
    public var steps: Int
    public var batch: Int
    public var learningRate: Double
    /// The SSM group's learning rate; nil: min(lr, 1e-3) for a model of the S4 backbone (S4
    /// and S4D stacks, as in the official examples), lr for one of Mamba's backbone (Mamba,
    /// Mamba-2 and hybrid stacks, whose S4 or S4D blocks then train at lr too).
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

/// Loss and accuracy over a set of sequences: `counted` targets (tokens or labels) of
/// `sequences` sequences, `correct` of them predicted.
public struct Evaluation: Sendable, Equatable {
    public let loss: Double
    public let correct: Int
    public let counted: Int
    public let sequences: Int
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
/// the cosine schedule. Everything is a function of (seed, step) and of the model's thread
/// count and planner effort (which decide how sums are split and which FFT algorithm runs), so
/// a run resumed from a checkpoint with the same two continues bit for bit as if it had not
/// stopped.
///
/// Data-parallel over a ``Communicator`` of N ranks: every rank draws the same global batch and
/// runs its share of the rows (``Communicator/share(of:)``); each rank's gradient is weighted by
/// its share of the counted targets, the gradients are summed over the ranks in one
/// ``Communicator/allReduceSum(_:)`` of the flat buffer, and every rank clips and takes the same
/// AdamW step, so the parameters stay equal on all ranks and follow the single-process run to
/// rounding. Parameters and AdamW moments are broadcast from rank 0 when the trainer is made. Dropout masks are
/// drawn per rank (from the seed, the step and the rank), so a run with dropout does not repeat
/// the single-process run's masks.
public struct Trainer<T: SSMScalar>: Sendable {
    public let model: SequenceModel<T>
    public let task: TrainingTask
    public let configuration: TrainingConfiguration
    public internal(set) var parameters: ParameterSet<T>
    public internal(set) var optimizer: AdamW<T>
    public let schedule: CosineSchedule
    /// The ranks this run is spread over (one process by default).
    public let communicator: any Communicator
    /// Seconds this trainer has spent in all-reduces of gradients and losses (0 on one rank).
    public private(set) var communicationSeconds = 0.0
    /// Bytes of gradients each step's all-reduce sums (the flat buffer; 0 on one rank).
    public var gradientBytesPerStep: Int { communicator.size > 1 ? parameters.storage.count * MemoryLayout<T>.stride : 0 }
    var gradients: ParameterSet<T>

    /// A fresh run: parameters from `configuration.seed`.
    public init(model: SequenceModel<T>, task: TrainingTask, configuration: TrainingConfiguration,
                communicator: any Communicator = SingleProcess()) throws(SSMError) {
        let parameters = try model.initialParameters(seed: configuration.seed)
        // The official S4 examples cap the SSM parameters' rate at 1e-3; Mamba trains them at the base rate.
        let ssmRate = configuration.ssmLearningRate ?? (model.backbone == .mamba ? configuration.learningRate : min(configuration.learningRate, 1e-3))
        let h = try AdamW<T>.Hyperparameters(learningRate: configuration.learningRate, ssmLearningRate: ssmRate, weightDecay: configuration.weightDecay)
        try self.init(model: model, task: task, configuration: configuration, parameters: parameters, optimizer: AdamW(h, layout: parameters),
                      communicator: communicator)
    }

    /// A run from given parameters and optimizer state (a checkpoint); rank 0's parameters and
    /// AdamW moments are broadcast to the other ranks, which must be at the same step.
    public init(model: SequenceModel<T>, task: TrainingTask, configuration: TrainingConfiguration, parameters: ParameterSet<T>,
                optimizer: AdamW<T>, communicator: any Communicator = SingleProcess()) throws(SSMError) {
        try model.check(parameters)
        guard optimizer.m.hasLayout(of: parameters) else {
            throw SSMError.value(argument: "optimizer", expected: "AdamW moments of the parameters' layout (\(parameters.scalarCount) values)")
        }
        guard task.input == model.input, task.output == model.output else {
            throw SSMError.option(name: "task", expected: "a task whose inputs and outputs fit the model")
        }
        guard configuration.batch >= communicator.size else {
            throw SSMError.option(name: "batch", expected: "at least one sequence per rank (\(communicator.size) ranks), got \(configuration.batch)")
        }
        (self.model, self.task, self.configuration, self.parameters, self.optimizer) = (model, task, configuration, parameters, optimizer)
        self.communicator = communicator
        schedule = try CosineSchedule(warmup: configuration.warmup, total: configuration.steps)
        gradients = parameters.zeros()
        if communicator.size > 1 {
            // Rank 0's parameters and AdamW moments for all; every rank must be at its step.
            // The mean step, then the sum of squared deviations from it: zero exactly when every
            // rank is at one step (integers, so the mean is exact then), and every rank reaches
            // the same verdict (a sum alone would let steps 1, 2, 3 pass at the middle rank).
            let s = Double(optimizer.step)
            let mean = try communicator.allReduceSum([s])[0] / Double(communicator.size)
            guard try communicator.allReduceSum([(s - mean) * (s - mean)])[0] == 0 else {
                throw SSMError.value(argument: "optimizer", expected: "the same step on every rank (rank \(communicator.rank) is at \(optimizer.step))")
            }
            func broadcast(_ values: inout [T]) throws(SSMError) {
                try values.withUnsafeMutableBufferPointer { (p: inout UnsafeMutableBufferPointer<T>) throws(SSMError) in
                    try communicator.broadcast(p, from: 0)
                }
            }
            try broadcast(&self.parameters.storage)
            try broadcast(&self.optimizer.m.storage)
            try broadcast(&self.optimizer.v.storage)
        }
    }

    /// Steps taken so far.
    public var step: Int { optimizer.step }

    /// One step: forward, loss, backward, clip, AdamW.
    /// - Throws: `SSMError` if the loss or a gradient is not finite, or if the model refuses a
    ///   parameter value (a kernel whose Δ overflowed): after the first step these mean the run
    ///   diverged, and the message says so.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public mutating func trainStep() throws(SSMError) -> StepReport {
        let t = optimizer.step + 1
        let ranks = communicator.size
        let global = task.trainingBatch(size: configuration.batch, seed: configuration.seed, index: t)
        let batch = ranks == 1 ? global : global.rows(communicator.share(of: global.batch), perToken: model.outputRows(batch: 1, length: global.length) == global.length)
        // Dropout's stream per (seed, step, rank), apart from the batches' streams (top bit).
        let dropoutSeed = SplitMix64.seed(SplitMix64.seed(configuration.seed, stream: UInt64(t) | 1 << 63), stream: UInt64(communicator.rank))
        let rows = model.outputRows(batch: batch.batch, length: batch.length)
        var result: Loss.Summary
        do throws(SSMError) {
            let activations = try model.forwardInPlace(batch, parameters: parameters, dropoutSeed: dropoutSeed)
            result = task.loss.evaluate(activations.outputs, targets: batch.targets, rows: rows, classes: model.output.classes,
                                        into: activations.dOutputs)
            gradients.zero()
            try model.backward(activations: activations, parameters: parameters, gradients: &gradients)
        } catch .value(let argument, let expected) {
            // The batch is the task's and finite, so a value refused inside the model comes from
            // the parameters: after step 1 that is divergence (a kernel's Δ = exp(log_dt)
            // overflowing, say), and the message says which value and what may help.
            throw SSMError.value(argument: argument, expected: "\(expected), at step \(t)\(divergenceHint(t))")
        }
        if ranks > 1 {
            let clock = ContinuousClock(), began = clock.now
            defer {
                let d = clock.now - began
                communicationSeconds += d.seconds
            }
            // Σ over ranks of (loss · counted, correct, counted); each gradient is of its own
            // mean, so it is weighted by its share of the targets before the sum.
            let totals = try communicator.allReduceSum([result.loss * Double(result.counted), Double(result.correct), Double(result.counted)])
            let weight = T(Double(result.counted) / max(totals[2], 1))
            let communicator = self.communicator
            try gradients.storage.withUnsafeMutableBufferPointer { (g: inout UnsafeMutableBufferPointer<T>) throws(SSMError) in
                for i in g.indices { g[i] *= weight }
                try communicator.allReduceSum(g)
            }
            result = Loss.Summary(loss: totals[0] / max(totals[2], 1), correct: Int(totals[1]), counted: Int(totals[2]))
        }
        guard result.loss.isFinite else { throw SSMError.value(argument: "loss", expected: "a finite loss at step \(t)\(divergenceHint(t))") }
        // A NaN or infinite gradient would reach every parameter through AdamW's moments.
        guard allFinite(gradients.storage) else {
            throw SSMError.value(argument: "gradients", expected: "finite gradients at step \(t)\(divergenceHint(t))")
        }
        let norm = configuration.clip > 0 ? gradients.clipNorm(maximum: configuration.clip) : .nan
        let factor = schedule.factor(step: t)
        optimizer.update(&parameters, gradients: gradients, scale: factor)
        return StepReport(step: t, loss: result.loss, accuracy: Double(result.correct) / Double(max(result.counted, 1)),
                          gradientNorm: norm, learningRateFactor: factor)
    }

    /// What a value refused at step `t` suggests: from step 2 on, parameters the updates drove
    /// out of range.
    private func divergenceHint(_ t: Int) -> String {
        t > 1 ? " (the parameters diverged: a lower learningRate or ssmLearningRate may help)" : ""
    }

    /// Loss and accuracy on the validation set, in convolution mode or (S4/S4D) recurrent
    /// mode, in slices of `slice` sequences; over several ranks each takes its share of the
    /// set and the sums are reduced (every rank returns the same result).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func evaluate(recurrent: Bool = false, slice: Int = 64) throws(SSMError) -> Evaluation {
        let all = task.validationBatch(size: configuration.validationSize, seed: configuration.seed)
        var loss = 0.0, correct = 0, counted = 0
        let (L, K) = (all.length, model.output.classes)
        let perToken = model.outputRows(batch: 1, length: L) == L
        let mine = communicator.share(of: all.batch)
        var start = mine.lowerBound
        while start < mine.upperBound {
            let end = min(start + slice, mine.upperBound)
            let part = all.rows(start ..< end, perToken: perToken)
            let outputs = recurrent ? try model.forwardRecurrent(part, parameters: parameters) : try model.forward(part, parameters: parameters).outputs
            let r: Loss.Result<T> = task.loss.evaluate(outputs, targets: part.targets, rows: model.outputRows(batch: part.batch, length: L), classes: K)
            loss += r.loss * Double(r.counted)
            correct += r.correct
            counted += r.counted
            start = end
        }
        if communicator.size > 1 {
            let totals = try communicator.allReduceSum([loss, Double(correct), Double(counted)])
            (loss, correct, counted) = (totals[0], Int(totals[1]), Int(totals[2]))
        }
        return Evaluation(loss: loss / Double(max(counted, 1)), correct: correct, counted: counted, sequences: all.batch)
    }
}
