// Recurrent mode: one step of the fast step engine (StepEngine.step, u: (B, H) → y: (B, H))
// at H = 256 and 1024, N = 64, B ∈ {1, 16}, float32, for S4D (diagonal) and S4 (HiPPO-LegS,
// linear step mode). The malloc count shows that a step allocates nothing: run with
// `--metric mallocCountTotal` alone (see the README). `ssm bench step` covers other shapes.

import Benchmark
import Foundation
import SSMKit

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions],
        timeUnits: .microseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1000
    )
    for H in [256, 1024] {
        for B in [1, 16] {
            register(B: B, H: H, model: "s4d")
            register(B: B, H: H, model: "s4-linear")
        }
    }
}

func register(B: Int, H: Int, model: String) {
    let box = EngineBox()
    let setup: @Sendable () async throws -> Void = {
        guard box.engine == nil else { return }
        let N = 64
        var rng = SplitMix64(seed: 5)
        let d = (0 ..< H).map { _ in Float.random(in: -1 ..< 1, using: &rng) }
        if model == "s4d" {
            let p = try S4DParameters<Float>(channels: H, state: N, initialization: .lin, seed: 6)
            let r = try S4DRecurrence(kernel: try S4DKernel<Float>(channels: H, modes: N / 2), logDt: p.logDt, c: p.c,
                                      logAReal: p.logAReal, aImag: p.aImag, d: d)
            box.engine = StepEngine(r)
        } else {
            let form = try HiPPO.nplr(.legs, size: N)
            let invDt = (0 ..< H).map { _ in Float(Double.random(in: Double.log(1e-3) ... Double.log(1e-1), using: &rng)) }
            let c = (0 ..< H * N / 2).map { _ in Complex(Float.random(in: -1 ..< 1, using: &rng), Float.random(in: -1 ..< 1, using: &rng)) }
            let r = try S4Recurrence(kernel: try S4Kernel<Float>(copies: 1, channels: H, ssms: 1, modes: N / 2, rank: 1),
                                     mode: .linear, length: 1024, invDt: invDt, aReal: form.lambda.map { Float(Double.log(-$0.real)) },
                                     aImag: form.lambda.map { Float(-$0.imaginary) },
                                     b: form.b.map { Complex(Float($0.real), Float($0.imaginary)) },
                                     p: form.p.map { Complex(Float($0.real), Float($0.imaginary)) }, cTilde: c, skip: d)
            box.engine = StepEngine(r, as: Float.self)
        }
        box.state = try box.engine!.makeState(batch: B)
        box.u = (0 ..< B * H).map { _ in Float.random(in: -1 ..< 1, using: &rng) }
        box.y = [Float](repeating: 0, count: B * H)
    }
    Benchmark("step \(model) B=\(B) H=\(H) N=64", configuration: .init(setup: setup)) { benchmark in
        for _ in benchmark.scaledIterations { try box.engine!.step(&box.state!, u: box.u, y: &box.y) }
        benchmark.measurement(.throughput, B)
    }
}

/// One benchmark's engine, state and buffers, made by its setup closure.
final class EngineBox: @unchecked Sendable {
    var engine: StepEngine<Float>?
    var state: StepEngine<Float>.State?
    var u: [Float] = [], y: [Float] = []
}
