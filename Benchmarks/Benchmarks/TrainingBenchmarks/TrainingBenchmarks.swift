// One training step (forward + cross-entropy + backward + clip + AdamW) of the model
// `ssm bench train` times: linear encoder from 1 feature, 4 pre-norm residual blocks of width
// 128, mean pooling, 10 classes; S4D with N = 64 at L = 1024, B = 16 (the PyTorch comparison's
// shape, README › Training), S4 at the same shape, and Mamba with N = 16 at L = 256, B = 16.
// float32. mallocCountTotal counts the step's heap allocations after warm-up (the gradients and
// the model's pass buffers are made once, in setup and the warm-up iteration). SSM_THREADS=N
// fixes the thread count (default: all cores).

import Benchmark
import Foundation
import SSMKit
import SSMTraining

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        maxDuration: .seconds(10),
        maxIterations: 20
    )
    register(.s4d, state: 64, length: 1024)
    register(.s4, state: 64, length: 1024)
    register(.mamba, state: 16, length: 256)
}

func register(_ family: ModelFamily, state: Int, length L: Int) {
    let box = StepBox()
    let B = 16
    let setup: @Sendable () async throws -> Void = {
        guard box.model == nil else { return }
        let c = try ModelConfiguration(family: family, layers: 4, width: 128, state: state, input: .features(1),
                                       output: .pooled(.mean, classes: 10))
        let threads = ProcessInfo.processInfo.environment["SSM_THREADS"].flatMap { Int($0) }
        let model = try SequenceModel<Float>(configuration: c, threads: threads)
        box.parameters = try model.initialParameters(seed: 1)
        box.optimizer = AdamW(try AdamW<Float>.Hyperparameters(learningRate: 1e-3), layout: box.parameters!)
        box.gradients = box.parameters!.zeros()
        var rng = SplitMix64(seed: 2)
        box.batch = SequenceBatch(batch: B, length: L, features: (0 ..< B * L).map { _ in Double.random(in: -1 ..< 1, using: &rng) },
                                  targets: (0 ..< B).map { _ in Double(Int.random(in: 0 ..< 10, using: &rng)) })
        box.model = model
    }
    Benchmark("train step \(family.rawValue) layers=4 H=128 N=\(state) L=\(L) B=\(B)", configuration: .init(setup: setup)) { benchmark in
        for _ in benchmark.scaledIterations {
            let model = box.model!, batch = box.batch!
            let act = try model.forwardInPlace(batch, parameters: box.parameters!)
            _ = Loss.crossEntropy.evaluate(act.outputs, targets: batch.targets, rows: B, classes: 10, into: act.dOutputs)
            box.gradients!.zero()
            try model.backward(activations: act, parameters: box.parameters!, gradients: &box.gradients!)
            box.gradients!.clipNorm(maximum: 1)
            box.optimizer!.update(&box.parameters!, gradients: box.gradients!)
        }
        benchmark.measurement(.throughput, B * L)
    }
}

/// One benchmark's model, parameters, optimizer and batch, made by its setup closure.
final class StepBox: @unchecked Sendable {
    var model: SequenceModel<Float>?
    var parameters: ParameterSet<Float>?
    var gradients: ParameterSet<Float>?
    var optimizer: AdamW<Float>?
    var batch: SequenceBatch?
}
