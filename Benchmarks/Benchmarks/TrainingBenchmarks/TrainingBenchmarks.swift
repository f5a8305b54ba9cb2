// One training step (forward + cross-entropy + backward + clip + AdamW) of the model
// `ssm bench train` times: linear encoder from 1 feature, 4 pre-norm residual blocks of width
// 128, mean pooling, 10 classes; S4D with N = 64 at L = 1024, B = 16 (the PyTorch comparison's
// shape, README › Training), S4 at the same shape, and Mamba with N = 16 at L = 256, B = 16.
// float32. mallocCountTotal counts the step's heap allocations after warm-up (the gradients and
// the model's pass buffers are made once, in setup and the warm-up iteration). The "step mode"
// benchmarks step one mixer of width 128 token by token, batch 1, and count the same way.
// SSM_THREADS=N fixes the thread count (default: all cores).

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
    registerStep("s4d") { try S4DMixer<Float>(width: 128, state: 64, threads: $0) }
    registerStep("s4") { try S4Mixer<Float>(width: 128, state: 64, threads: $0) }
    registerStep("mamba") { try MambaMixer<Float>(width: 128, state: 16, threads: $0) }
}

/// Step mode of one mixer (width 128, batch 1): 16 tokens per iteration through
/// `SequenceMixer.step(_:_:parameters:into:)` on the mixer's initial parameters. mallocCountTotal
/// counts what stepping allocates after the state is made (nothing).
func registerStep<M: SequenceMixer>(_ name: String, _ make: @escaping @Sendable (Int?) throws -> M) where M.Scalar == Float {
    let box = MixerStepBox<M>()
    let setup: @Sendable () async throws -> Void = {
        guard box.mixer == nil else { return }
        let mixer = try make(ProcessInfo.processInfo.environment["SSM_THREADS"].flatMap { Int($0) })
        box.parameters = try mixer.initialParameters(seed: 1).storage
        let layout = ParameterLayout(mixer.parameterDeclarations)
        box.layout = layout
        let view = box.parameters.withUnsafeBufferPointer { ParameterView(base: $0.baseAddress!, layout: layout) }
        box.state = try mixer.makeState(batch: 1, length: 1024, parameters: view)
        var rng = SplitMix64(seed: 3)
        box.u = (0 ..< mixer.width).map { _ in Float.random(in: -1 ..< 1, using: &rng) }
        box.y = [Float](repeating: 0, count: mixer.width)
        box.mixer = mixer
    }
    Benchmark("step mode \(name) H=128 B=1, 16 tokens", configuration: .init(setup: setup)) { benchmark in
        let (mixer, layout) = (box.mixer!, box.layout!)
        for _ in benchmark.scaledIterations {
            try box.parameters.withUnsafeBufferPointer { p in
                let view = ParameterView(base: p.baseAddress!, layout: layout)
                try box.u.withUnsafeBufferPointer { u in
                    try box.y.withUnsafeMutableBufferPointer { y in
                        for _ in 0 ..< 16 { try mixer.step(&box.state!, u, parameters: view, into: y) }
                    }
                }
            }
        }
        benchmark.measurement(.throughput, 16)
    }
}

/// One step-mode benchmark's mixer, parameters, state and buffers.
final class MixerStepBox<M: SequenceMixer>: @unchecked Sendable {
    var mixer: M?
    var parameters: [Float] = []
    var layout: ParameterLayout?
    var state: M.State?
    var u: [Float] = [], y: [Float] = []
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
