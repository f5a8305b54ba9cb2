// The selective scan (S6) at Mamba-130m's shape (D = 1536, N = 16, float32), forward and
// forward + backward, next to its bound: the scan's B·D·L·N exponentials alone, with the same
// vectorized exponential and threads (SelectiveScan.runExponentialsOnly). Shapes: B ∈ {1, 8},
// L ∈ {512, 2048, 8192}. `ssm bench scan` covers any other shape.
// SSM_THREADS=N fixes the thread count (default: all cores).

import Benchmark
import Foundation
import SSMKit

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident, .instructions],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 20
    )
    for B in [1, 8] {
        for L in [512, 2048, 8192] { registerScan(Float.self, batch: B, channels: 1536, state: 16, length: L) }
    }
}

/// Registers `scan fwd|fwd+bwd <shape>` and `exp bound <shape>`, sharing inputs made once in
/// the setup closure (not timed).
func registerScan<T: FFTScalar>(_: T.Type, batch B: Int, channels D: Int, state N: Int, length L: Int) {
    let name = "B=\(B) D=\(D) N=\(N) L=\(L)"
    let state = ScanState<T>()
    let setup: @Sendable () async throws -> Void = {
        guard state.scan == nil else { return }
        let shape = try SelectiveScanShape(batch: B, channels: D, state: N, length: L)
        let threads = ProcessInfo.processInfo.environment["SSM_THREADS"].flatMap { Int($0) }
        state.scan = try SelectiveScan<T>(shape: shape, deltaSoftplus: true, threads: threads)
        var rng = SplitMix64(seed: 11)
        func r(_ n: Int, _ scale: Double = 1) -> [T] { (0 ..< n).map { _ in T(scale * Double.random(in: -1 ..< 1, using: &rng)) } }
        state.inputs = SelectiveScanInputs(
            u: r(shape.sequenceCount), delta: r(shape.sequenceCount, 2), a: (0 ..< D * N).map { -T($0 % N + 1) },
            b: r(shape.count(shape.b)), c: r(shape.count(shape.c)), d: r(D), z: r(shape.sequenceCount), deltaBias: r(D, 0.5))
        state.dOut = r(shape.sequenceCount)
    }
    let configuration = Benchmark.Configuration(scalingFactor: .one, setup: setup)
    let samples = B * D * L
    Benchmark("scan fwd \(name)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try state.scan!.forward(state.inputs!)) }
        benchmark.measurement(.throughput, samples)
    }
    Benchmark("scan fwd+bwd \(name)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try state.scan!.forward(state.inputs!))
            blackHole(try state.scan!.backward(state.inputs!, dOut: state.dOut))
        }
        benchmark.measurement(.throughput, samples)
    }
    Benchmark("exp bound \(name)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try state.scan!.runExponentialsOnly(state.inputs!)) }
    }
}

/// One shape's scan and inputs, made once by the setup closure.
final class ScanState<T: FFTScalar>: @unchecked Sendable {
    var scan: SelectiveScan<T>?
    var inputs: SelectiveScanInputs<T>?
    var dOut: [T] = []
}
