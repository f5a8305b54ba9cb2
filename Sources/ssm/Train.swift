import ArgumentParser
import SSMKit
import SSMTraining
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ssm train`: trains a model on a task in convolution mode and reports validation accuracy
/// (and, for S4, S4D and Mamba-2, the same validation set through the recurrent mode).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an S4D, S4, Mamba or Mamba-2 model on a task; each task's defaults solve it.",
        discussion: """
        Tasks: copying, selective-copying, induction-heads, adding, digits (sklearn's 8×8 digits, \
        bundled; --data reads another file of the same layout). Progress goes to stderr (a bar on \
        a terminal); with --json the output ends with one JSON line.
        """
    )

    @Option(name: .long, help: "copying, selective-copying, induction-heads, adding or digits.")
    var task: TaskKind = .selectiveCopying
    @Option(name: .long, help: "s4d, s4, mamba or mamba2 (default: the task's).")
    var model: ModelFamily?
    @Option(name: .long, help: "Residual blocks.") var layers: Int?
    @Option(name: .long, help: "Model width H (d_model).") var width: Int?
    @Option(name: .long, help: "SSM state size N.") var state: Int?
    @Option(name: .long, help: "Sequence length (default: the task's).") var length: Int?
    @Option(name: .long, help: "Vocabulary of the token tasks.") var vocabulary: Int = 16
    @Option(name: .long, help: "Tokens to copy (copying tasks).") var tokens: Int = 8
    @Option(name: .long, help: "Sequences per step.") var batch: Int?
    @Option(name: .long, help: "Training steps.") var steps: Int?
    @Option(name: .long, help: "Learning rate.") var lr: Double?
    @Option(name: .long, help: "The SSM parameters' learning rate (default: min(lr, 1e-3) for S4/S4D, lr for Mamba and Mamba-2).") var ssmLr: Double?
    @Option(name: .long, help: "AdamW weight decay.") var weightDecay: Double = 0.01
    @Option(name: .long, help: "Warmup steps (default: min(steps/10, 100)).") var warmup: Int?
    @Option(name: .long, help: "Gradient-norm clip (0: none).") var clip: Double = 1
    @Option(name: .long, help: "Dropout after each mixer.") var dropout: Double = 0
    @Option(name: .long, help: "Seed of the parameters, batches and dropout.") var seed: UInt64 = 0
    @Option(name: .long, help: "Validation sequences (synthetic tasks).") var validationSize: Int = 512
    @Option(name: .long, help: "float32 or float64 (default float32; on --resume, the run's).") var precision: Precision?
    @Option(name: .long, help: "Worker threads (default: all online processors; on --resume, the run's).") var threads: Int?
    @Option(name: .long, help: "The digits file.") var data: String?
    @Option(name: .long, help: "Write a checkpoint directory here at the end (and every --checkpoint-every steps).") var checkpoint: String?
    @Option(name: .long, help: "Steps between checkpoints (0: only at the end).") var checkpointEvery: Int = 0
    @Option(name: .long, help: "Resume from this checkpoint directory (its model and run settings are used).") var resume: String?
    @Option(name: .long, help: "Stop after this many steps of this invocation (then checkpoint), to resume later.") var stopAfter: Int?
    @Option(name: .long, help: "FFTW planner effort (default estimate: runs repeat bit for bit across processes; on --resume, the run's).")
    var effort: FFTPlannerEffort?
    @Flag(name: .long, help: "End the output with one JSON line.") var json = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads: expected a positive count, got \(threads)") }
        if checkpointEvery < 0 { throw ValidationError("--checkpoint-every: expected ≥ 0, got \(checkpointEvery)") }
        if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after: expected a positive count, got \(stopAfter)") }
        if resume != nil, model != nil || layers != nil || width != nil || state != nil {
            throw ValidationError("--resume: the model comes from the checkpoint; drop --model, --layers, --width and --state")
        }
        // A resumed run repeats the uninterrupted one: its settings are the checkpoint's, and a
        // flag that would change them is refused rather than ignored. (A flag given at its
        // default value cannot be told from an absent one, and changes nothing.)
        if resume != nil {
            let given = [("--task", task != .selectiveCopying), ("--length", length != nil), ("--vocabulary", vocabulary != 16),
                         ("--tokens", tokens != 8), ("--batch", batch != nil), ("--steps", steps != nil), ("--lr", lr != nil),
                         ("--ssm-lr", ssmLr != nil), ("--weight-decay", weightDecay != 0.01), ("--warmup", warmup != nil),
                         ("--clip", clip != 1), ("--dropout", dropout != 0), ("--seed", seed != 0),
                         ("--validation-size", validationSize != 512)].filter(\.1).map(\.0)
            if !given.isEmpty {
                throw ValidationError("--resume: the run's settings come from the checkpoint; drop \(given.joined(separator: ", "))")
            }
        }
        if stopAfter != nil, checkpoint == nil {
            throw ValidationError("--stop-after: needs --checkpoint, where the stopped run is saved to resume from")
        }
        if checkpointEvery > 0, checkpoint == nil {
            throw ValidationError("--checkpoint-every: needs --checkpoint, the directory the checkpoints are written to")
        }
        if resume == nil, data != nil, task != .digits {
            throw ValidationError("--data: only the digits task reads a file (the task is \(task.rawValue))")
        }
        if resume == nil, [.adding, .digits].contains(task) {
            let unused = [("--vocabulary", vocabulary != 16), ("--tokens", tokens != 8)].filter(\.1).map(\.0)
            if !unused.isEmpty { throw ValidationError("\(unused.joined(separator: ", ")): the \(task.rawValue) task has no tokens") }
        }
        if let checkpoint {
            // Found now rather than after the last step: a path that is a file, or whose parent
            // is not a writable directory.
            var status = stat()
            if stat(checkpoint, &status) == 0, status.st_mode & S_IFMT != S_IFDIR {
                throw ValidationError("--checkpoint: \(checkpoint) is a file, not a directory")
            }
            let trimmed = checkpoint.hasSuffix("/") && checkpoint.count > 1 ? String(checkpoint.dropLast()) : checkpoint
            let parent = trimmed.contains("/") ? String(trimmed[..<trimmed.lastIndex(of: "/")!]) : "."
            if access(parent.isEmpty ? "/" : parent, W_OK | X_OK) != 0 {
                throw ValidationError("--checkpoint: cannot write into \(parent.isEmpty ? "/" : parent)")
            }
        }
    }

    /// Threads, planner effort and precision decide the bits of every step (how sums are split
    /// over workers, which FFT algorithm runs): a resumed run takes the checkpoint's, and an
    /// explicit different value is refused. Checkpoints without them (older runs) take the
    /// flags, or the defaults.
    struct Machine {
        let threads: Int
        let effort: FFTPlannerEffort
        let precision: Precision

        init(threads: Int?, effort: FFTPlannerEffort?, precision: Precision?, run: [String: String]) throws {
            func setting<V: Equatable>(_ flag: String, _ given: V?, _ key: String, _ parse: (String) -> V?, _ fallback: V) throws -> V {
                guard let text = run[key] else { return given ?? fallback }
                guard let stored = parse(text) else { throw ValidationError("--resume: the checkpoint's \(key) '\(text)' is not valid") }
                if let given, given != stored {
                    throw ValidationError("\(flag): the run was trained with \(text) and resumes with it (the bits depend on it); drop \(flag)")
                }
                return stored
            }
            self.threads = try setting("--threads", threads, "threads", { Int($0).flatMap { $0 >= 1 ? $0 : nil } }, WorkerPool.onlineProcessorCount())
            self.effort = try setting("--effort", effort, "effort", FFTPlannerEffort.init(rawValue:), .estimate)
            self.precision = try setting("--precision", precision, "precision", Precision.init(rawValue:), .float32)
        }
    }

    /// Refuses, before anything is built, sizes whose memory cannot exist: a lower bound of
    /// what the run holds (each block's W × 2W weights and W × N SSM parameters with their
    /// gradient and two moments, the embedding, one activation per block and position, the
    /// validation set's tokens) against this machine's memory.
    func checkSizes(_ machine: Machine) throws {
        let d = TaskDefaults.for(task)
        let (L, W, N, depth, B) = (length ?? 64, width ?? d.width, state ?? d.state, layers ?? d.layers, batch ?? d.batch)
        let value = machine.precision == .float32 ? 4 : 8
        try requireMemory([([depth, W, W, 8], value), ([depth, W, N, 4], value), ([vocabulary, W, 4], value), ([B, L, W, depth], value),
                           ([validationSize, L], 8), ([B, L], 8)],
                          flags: "--batch, --length, --width, --state, --layers, --vocabulary, --validation-size")
    }

    /// The flag that sets each argument of the library's task, model and training settings
    /// (``underFlagNames(_:)`` reports their errors under these names).
    static let flags = ["task": "--task", "length": "--length", "vocabulary": "--vocabulary", "tokensToCopy": "--tokens",
                        "digitsPath": "--data", "layers": "--layers", "width": "--width", "state": "--state", "dropout": "--dropout",
                        "steps": "--steps", "batch": "--batch", "learningRate": "--lr", "clip": "--clip", "warmup": "--warmup",
                        "validationSize": "--validation-size", "ssm_lr": "--ssm-lr", "weight_decay": "--weight-decay"]

    func run() throws {
        let run = try resume.map { try SafeTensorsFile(path: "\($0)/\(Checkpoint.optimizerFile)").metadata } ?? [:]
        let machine = try Machine(threads: threads, effort: effort, precision: precision, run: run)
        if resume == nil { try checkSizes(machine) }
        switch machine.precision {
        case .float32: try train(Float.self, machine)
        case .float64: try train(Double.self, machine)
        }
    }

    /// Runs `body`, which builds the task, model or settings from this command's flags, and
    /// reports its errors under the flag that set the argument (`--tokens`, not `tokensToCopy`).
    func underFlagNames<R>(_ body: () throws -> R) throws -> R {
        do { return try body() } catch let error as SSMError { throw error.renamingArguments(Self.flags) }
    }

    func train<T: SSMScalar>(_: T.Type, _ machine: Machine) throws {
        // Under mpirun each rank runs this; rank 0 alone reports and writes checkpoints.
        let communicator: any Communicator = MPICommunicator.isLaunchedByMPI ? try MPICommunicator.world() : SingleProcess()
        let leader = communicator.rank == 0
        var trainer: Trainer<T>
        let taskKind: TaskKind
        var digitsPath = data
        if let resume {
            let contents = try Checkpoint.read(directory: resume, as: T.self)
            guard let optimizer = contents.optimizer else {
                throw SSMError.missing(argument: "--resume \(resume)", expected: "a checkpoint with \(Checkpoint.optimizerFile)")
            }
            let r = contents.run
            guard let kindText = r["task"], let kind = TaskKind(rawValue: kindText) else {
                throw SSMError.missing(argument: "--resume \(resume)", expected: "the task in the optimizer's metadata")
            }
            taskKind = kind
            func integer(_ key: String) throws -> Int {
                guard let text = r[key], let v = Int(text) else { throw SSMError.missing(argument: "--resume \(resume): \(key)", expected: "an integer") }
                return v
            }
            let length = kind == .digits ? nil : try integer("length")
            let (vocabulary, tokens) = (try integer("vocabulary"), try integer("tokens"))
            // The digits file the run was started on, unless --data names where it is now.
            digitsPath = data ?? r["data"]
            let task = try underFlagNames { try TrainingTask(kind, length: length, vocabulary: vocabulary, tokensToCopy: tokens, digitsPath: digitsPath) }
            guard let seedText = r["seed"], let seed = UInt64(seedText), let clipText = r["clip"], let clip = Double(clipText) else {
                throw SSMError.missing(argument: "--resume \(resume)", expected: "seed and clip in the optimizer's metadata")
            }
            let settings = try TrainingConfiguration(steps: try integer("steps"), batch: try integer("batch"),
                                                     learningRate: optimizer.hyperparameters.learningRate,
                                                     ssmLearningRate: optimizer.hyperparameters.ssmLearningRate,
                                                     weightDecay: optimizer.hyperparameters.weightDecay, warmup: try integer("warmup"),
                                                     clip: clip, seed: seed, validationSize: try integer("validation_size"))
            trainer = try Trainer(model: SequenceModel<T>(configuration: contents.configuration, threads: machine.threads, effort: machine.effort),
                                  task: task,
                                  configuration: settings, parameters: contents.parameters, optimizer: optimizer, communicator: communicator)
        } else {
            taskKind = task
            let d = TaskDefaults.for(task)
            trainer = try underFlagNames {
                let t = try TrainingTask(task, length: length, vocabulary: vocabulary, tokensToCopy: tokens, digitsPath: data)
                let configuration = try ModelConfiguration(family: model ?? d.model, layers: layers ?? d.layers, width: width ?? d.width,
                                                           state: state ?? d.state, input: t.input, output: t.output, dropout: dropout)
                let settings = try TrainingConfiguration(steps: steps ?? d.steps, batch: batch ?? d.batch, learningRate: lr ?? d.learningRate,
                                                         ssmLearningRate: ssmLr, weightDecay: weightDecay, warmup: warmup, clip: clip,
                                                         seed: seed, validationSize: validationSize)
                return try Trainer(model: SequenceModel<T>(configuration: configuration, threads: machine.threads, effort: machine.effort), task: t,
                                   configuration: settings, communicator: communicator)
            }
        }
        // Every model here is built from a configuration (flags or a checkpoint's metadata).
        let c = trainer.model.configuration!, s = trainer.configuration
        var run = s.metadata
        run["task"] = taskKind.rawValue
        run["length"] = "\(trainer.task.length)"
        run["vocabulary"] = "\(trainer.task.vocabulary)"
        run["tokens"] = "\(trainer.task.tokensToCopy)"
        if let digitsPath { run["data"] = digitsPath }
        (run["threads"], run["effort"], run["precision"]) = ("\(machine.threads)", machine.effort.rawValue, machine.precision.rawValue)

        let progress = leader ? Progress(total: s.steps, unit: "steps", interactive: isatty(2) != 0) : nil
        let tokensPerStep = Double(s.batch * trainer.task.length)
        var recentLoss: [Double] = [], recentAccuracy: [Double] = []
        var taken = 0
        let clock = ContinuousClock()
        let start = clock.now
        func elapsed() -> Double { (clock.now - start).seconds }
        while trainer.step < s.steps, taken < (stopAfter ?? .max) {
            let report = try trainer.trainStep()
            taken += 1
            recentLoss = Array((recentLoss + [report.loss]).suffix(20))
            recentAccuracy = Array((recentAccuracy + [report.accuracy]).suffix(20))
            let loss = recentLoss.reduce(0, +) / Double(recentLoss.count)
            let accuracy = recentAccuracy.reduce(0, +) / Double(recentAccuracy.count)
            progress?.update(done: report.step, figures: "loss \(formatFixed(loss, 4)) · acc \(formatFixed(100 * accuracy, 1))% · "
                + "\(formatFixed(tokensPerStep * Double(taken) / elapsed() / 1000, 1))k tok/s")
            if leader, let checkpoint, checkpointEvery > 0, report.step % checkpointEvery == 0 {
                try Checkpoint.write(directory: checkpoint, configuration: c, parameters: trainer.parameters, optimizer: trainer.optimizer, run: run)
            }
        }
        let trainSeconds = elapsed()
        progress?.finish()
        if leader, let checkpoint {
            try Checkpoint.write(directory: checkpoint, configuration: c, parameters: trainer.parameters, optimizer: trainer.optimizer, run: run)
        }
        let validation = try trainer.evaluate()
        let recurrent = c.mixers.contains(where: \.hasDistinctRecurrentMode) ? try trainer.evaluate(recurrent: true) : nil
        let fields: [(String, Any)] = [
            ("task", taskKind.rawValue), ("model", c.mixerDescription), ("steps", trainer.step), ("seconds", trainSeconds),
            ("loss", validation.loss), ("accuracy", validation.accuracy), ("recurrent_accuracy", recurrent.map { $0.accuracy } ?? Double.nan),
            ("train_loss", recentLoss.reduce(0, +) / Double(max(recentLoss.count, 1))), ("layers", c.layers), ("width", c.width),
            ("state", c.state), ("length", trainer.task.length), ("batch", s.batch), ("lr", trainer.optimizer.hyperparameters.learningRate),
            ("seed", s.seed), ("tokens_per_second", tokensPerStep * Double(taken) / trainSeconds),
            ("precision", machine.precision.rawValue), ("validation_sequences", validation.sequences),
            ("validation_targets", validation.counted), ("ranks", communicator.size),
            ("allreduce_seconds", trainer.communicationSeconds), ("allreduce_bytes_per_step", trainer.gradientBytesPerStep),
        ]
        guard leader else { return }
        if json {
            print(jsonLine(fields))
        } else {
            print("\(taskKind.rawValue) · \(c.mixerDescription) · \(c.layers) layers · width \(c.width) · state \(c.state) · L \(trainer.task.length)")
            print("steps \(trainer.step) in \(formatFixed(trainSeconds, 1)) s · validation loss \(formatFixed(validation.loss, 4)) · accuracy \(formatFixed(100 * validation.accuracy, 2))%"
                + (recurrent.map { " · recurrent accuracy \(formatFixed(100 * $0.accuracy, 2))%" } ?? ""))
        }
    }
}

extension TaskKind: ExpressibleByArgument {}
extension ModelFamily: ExpressibleByArgument {}
extension ModelBackbone: ExpressibleByArgument {}
