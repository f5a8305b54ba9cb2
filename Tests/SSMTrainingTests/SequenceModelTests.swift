import Testing
import SSMKit
@testable import SSMTraining

/// The whole model: gradients against finite differences, convolution mode against recurrent
/// mode, and bad input.
@Suite("Sequence model")
struct SequenceModelTests {
    static let shapes: [(ModelFamily, ModelInput, ModelOutput, Double)] = [
        (.s4d, .tokens(vocabulary: 5), .perToken(classes: 5), 0),
        (.s4d, .features(2), .pooled(.mean, classes: 3), 0.2),
        (.s4, .features(1), .pooled(.last, classes: 2), 0),
        (.mamba, .tokens(vocabulary: 6), .perToken(classes: 6), 0.1),
        (.mamba, .features(2), .pooled(.mean, classes: 1), 0),
        (.mamba2, .tokens(vocabulary: 5), .perToken(classes: 5), 0.1),
    ]

    func batch(_ input: ModelInput, _ output: ModelOutput, B: Int, L: Int, seed: UInt64) -> SequenceBatch {
        var rng = SplitMix64(seed: seed)
        let rows = if case .perToken = output { B * L } else { B }
        let targets = (0 ..< rows).map { _ in Double(Int.random(in: 0 ..< output.classes, using: &rng)) }
        switch input {
        case let .tokens(v): return SequenceBatch(batch: B, length: L, tokens: (0 ..< B * L).map { _ in Int.random(in: 0 ..< v, using: &rng) }, targets: targets)
        case let .features(f): return SequenceBatch(batch: B, length: L, features: randomValues(B * L * f, seed: seed + 1), targets: targets)
        }
    }

    @Test("every parameter's gradient = central finite differences (Double, 2 layers, with dropout where set)",
          arguments: shapes.indices)
    func gradients(_ index: Int) throws {
        let (family, input, output, dropout) = Self.shapes[index]
        let (B, L) = (2, 9)
        let c = try ModelConfiguration(family: family, layers: 2, width: 4, state: family == .mamba ? 3 : 4, input: input, output: output, dropout: dropout)
        let model = try SequenceModel<Double>(configuration: c, threads: 2)
        var p = try model.initialParameters(seed: 5)
        if family == .s4 { for i in 0 ..< 2 { p["s4_layers.\(i).kernel.inv_dt"] = [-3, -2, -1.5, -2.5] } }
        let x = batch(input, output, B: B, L: L, seed: 6)
        let rows = model.outputRows(batch: B, length: L)
        let dOut = randomValues(rows * output.classes, seed: 7)
        let (_, act) = try model.forward(x, parameters: p, dropoutSeed: 11)
        var g = p.zeros()
        try model.backward(dOutputs: dOut, activations: act, parameters: p, gradients: &g)
        let scale = p.names.reduce(0.0) { m, name in g[name].reduce(m) { max($0, abs($1)) } }
        for name in p.names {
            // Sample up to 6 entries per parameter: the full sweep is O(parameters²).
            let count = p[name].count
            let picks = Array(Set((0 ..< 6).map { ($0 * 7919 + name.count) % count })).sorted()
            try expectGradient("\(family) \(name)", g[name], indices: picks, scale: scale) { i, e in
                var q = p
                var v = q[name]; v[i] += e; q[name] = v
                return weightedSum(dOut, try model.forward(x, parameters: q, dropoutSeed: 11).outputs)
            }
        }
        // Gradients accumulate: a second backward doubles them.
        var twice = g
        try model.backward(dOutputs: dOut, activations: act, parameters: p, gradients: &twice)
        for name in p.names { #expect(zip(twice[name], g[name]).allSatisfy { abs($0 - 2 * $1) <= 1e-12 * max(1, abs($1)) }, "\(name) accumulates") }
    }

    @Test("recurrent mode = convolution mode for S4D, S4, Mamba and Mamba-2 models (Double, odd L, L = 1)", arguments: [ModelFamily.s4d, .s4, .mamba, .mamba2], [1, 37])
    func recurrentMatchesConvolution(_ family: ModelFamily, _ L: Int) throws {
        let c = try ModelConfiguration(family: family, layers: 2, width: 3, state: 8, input: .tokens(vocabulary: 4), output: .perToken(classes: 4))
        let model = try SequenceModel<Double>(configuration: c, threads: 2)
        let p = try model.initialParameters(seed: 8)
        let x = batch(c.input, c.output, B: 2, L: L, seed: 9)
        let conv = try model.forward(x, parameters: p).outputs
        let rec = try model.forwardRecurrent(x, parameters: p)
        let err = zip(conv, rec).reduce(0.0) { max($0, abs($1.0 - $1.1)) } / conv.reduce(0.0) { max($0, abs($1)) }
        #expect(err <= 1e-11, "\(family) L = \(L): relative difference \(err)")
    }

    @Test("float32 recurrent mode agrees with convolution mode at L = 1024 (S4D)")
    func floatRecurrent() throws {
        let c = try ModelConfiguration(family: .s4d, layers: 2, width: 8, state: 16, input: .features(1), output: .perToken(classes: 2))
        let model = try SequenceModel<Float>(configuration: c)
        let p = try model.initialParameters(seed: 10)
        let x = batch(c.input, c.output, B: 1, L: 1024, seed: 11)
        let conv = try model.forward(x, parameters: p).outputs, rec = try model.forwardRecurrent(x, parameters: p)
        let err = zip(conv, rec).reduce(0.0) { max($0, Double(abs($1.0 - $1.1))) } / Double(conv.reduce(0) { max($0, abs($1)) })
        // Float rounding through 2 layers of FFT convolution vs recurrence: ~1e-6 measured.
        #expect(err <= 1e-4, "relative difference \(err)")
    }

    @Test("bad input: wrong token count, token out of range, NaN features, wrong or missing parameters")
    func badInput() throws {
        let c = try ModelConfiguration(family: .s4d, layers: 1, width: 2, state: 4, input: .tokens(vocabulary: 3), output: .perToken(classes: 3))
        let model = try SequenceModel<Double>(configuration: c)
        let p = try model.initialParameters(seed: 1)
        #expect(throws: SSMError.self) { try model.forward(SequenceBatch(batch: 1, length: 3, tokens: [0, 1], targets: [0, 0, 0]), parameters: p) }
        #expect(throws: SSMError.self) { try model.forward(SequenceBatch(batch: 1, length: 2, tokens: [0, 3], targets: [0, 0]), parameters: p) }
        let f = try SequenceModel<Double>(configuration: try ModelConfiguration(family: .s4d, layers: 1, width: 2, state: 4, input: .features(1),
                                                                            output: .pooled(.mean, classes: 2)))
        #expect(throws: SSMError.self) { try f.forward(SequenceBatch(batch: 1, length: 2, features: [1, .nan], targets: [0]), parameters: f.initialParameters(seed: 1)) }
        var q = p
        q["s4_layers.0.D"] = [.infinity, 0]
        #expect(throws: SSMError.self) { try model.check(q) }
        #expect(throws: SSMError.self) { try model.check(ParameterSet<Double>()) }
        #expect(throws: SSMError.self) { try ModelConfiguration(family: .s4d, layers: 1, width: 2, state: 5, input: .features(1), output: .perToken(classes: 2)) }
        #expect(throws: SSMError.self) { try ModelConfiguration(family: .mamba, layers: 0, width: 2, state: 4, input: .features(1), output: .perToken(classes: 2)) }
        #expect(throws: SSMError.self) { try model.forward(SequenceBatch(batch: 1, length: 2, tokens: [0, 1], targets: [0, 0]), parameters: ParameterSet<Double>()) }
    }

    @Test("a run that learning rates of 10^3 drive out of range stops with a typed error that says it diverged",
          arguments: [ModelFamily.s4d, .s4, .mamba])
    func divergence(_ family: ModelFamily) throws {
        let task = try TrainingTask(.selectiveCopying, length: 16, vocabulary: 6, tokensToCopy: 2)
        let c = try ModelConfiguration(family: family, layers: 2, width: 8, state: 4, input: task.input, output: task.output)
        let settings = try TrainingConfiguration(steps: 40, batch: 4, learningRate: 1e3, ssmLearningRate: 1e3, warmup: 0, seed: 7, validationSize: 4)
        var trainer = try Trainer(model: try SequenceModel<Float>(configuration: c), task: task, configuration: settings)
        var failure: SSMError?
        for _ in 0 ..< settings.steps where failure == nil {
            do { _ = try trainer.trainStep() } catch { failure = error }
        }
        let error = try #require(failure, "\(family): 40 steps at learning rate 10^3 ran without an error")
        #expect(error.description.contains("diverged"), "\(family): \(error)")
        #expect(trainer.step >= 1, "\(family): failed at the first step, before any update: \(error)")
    }
}

@Suite("Official names")
struct OfficialNameTests {
    @Test("a Mamba token model's parameters are MambaLMHeadModel's state_dict (rms_norm=True, untied), in order")
    func mambaNames() throws {
        let c = try ModelConfiguration(family: .mamba, layers: 2, width: 16, state: 4, input: .tokens(vocabulary: 10), output: .perToken(classes: 10))
        let names = try SequenceModel<Float>(configuration: c).initialParameters(seed: 0).names
        var expected = ["backbone.embedding.weight"]
        for i in 0 ..< 2 {
            expected += ["norm.weight"].map { "backbone.layers.\(i).\($0)" }
            expected += ["in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D",
                         "out_proj.weight"].map { "backbone.layers.\(i).mixer.\($0)" }
        }
        expected += ["backbone.norm_f.weight", "lm_head.weight"]
        #expect(Set(names) == Set(expected), "\(Set(names).symmetricDifference(expected))")
    }

    @Test("an S4D model's parameters are example.py's S4Model state_dict with s4d.py S4D layers")
    func s4dNames() throws {
        let c = try ModelConfiguration(family: .s4d, layers: 1, width: 4, state: 4, input: .features(1), output: .pooled(.mean, classes: 3))
        let names = try SequenceModel<Float>(configuration: c).initialParameters(seed: 0).names
        let expected = ["encoder.weight", "encoder.bias", "s4_layers.0.kernel.log_dt", "s4_layers.0.kernel.C", "s4_layers.0.kernel.log_A_real",
                        "s4_layers.0.kernel.A_imag", "s4_layers.0.D", "s4_layers.0.output_linear.0.weight", "s4_layers.0.output_linear.0.bias",
                        "norms.0.weight", "norms.0.bias", "decoder.weight", "decoder.bias"]
        #expect(Set(names) == Set(expected), "\(Set(names).symmetricDifference(expected))")
    }
}
