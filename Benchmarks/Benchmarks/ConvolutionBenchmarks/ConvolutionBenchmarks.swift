// FFT convolution, forward and forward + backward, next to the FFTW bound: the same transforms
// with the same plans, threads and schedule, and nothing else (FFTConvolution.runTransformsOnly).
// The ratio of a `conv` row to its `bound` row in one run is the overhead SSMKit adds to FFTW.
//
// Shapes: H = 256, B ∈ {1, 8}, L = 2^12 … 2^18 (float32). Larger L with H = 256 and B = 8 does
// not fit in this machine's memory budget for a benchmark (u, y, dY, dU of 2^31 floats each at
// L = 2^20), so L = 2^20 runs with H = 16. `ssm bench conv` covers any other shape.
// SSM_THREADS=N fixes the thread count (default: all cores).

import Benchmark
import Foundation
import SSMKit

/// FFTW wisdom shared by the benchmark processes (package-benchmark runs each benchmark in a
/// process of its own, which would otherwise measure every plan again): $SSM_WISDOM, else
/// .build/fftw-wisdom under the working directory.
let wisdomPath = ProcessInfo.processInfo.environment["SSM_WISDOM"] ?? ".build/fftw-wisdom"

let benchmarks: @Sendable () -> Void = {
    FFT.defaultEffort = .measure
    try? FFT.importWisdom(from: wisdomPath)
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident, .instructions],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 20
    )

    var shapes: [(batch: Int, channels: Int, length: Int)] = []
    for exponent in stride(from: 12, through: 18, by: 2) {
        for batch in [1, 8] { shapes.append((batch, 256, 1 << exponent)) }
    }
    shapes.append((1, 16, 1 << 20))

    for (B, H, L) in shapes {
        let shape = ConvolutionShape(batch: B, channels: H, length: L)
        let name = "B=\(B) H=\(H) L=2^\(L.trailingZeroBitCount)"
        registerConvolution(Float.self, shape: shape, name: name, backward: false)
        registerConvolution(Float.self, shape: shape, name: name, backward: true)
    }
}

/// Registers `conv fwd|fwd+bwd <name>` and `bound fwd|fwd+bwd <name>`; both share one
/// convolution instance and its inputs, made in the setup closure (not timed).
func registerConvolution<T: FFTScalar>(_: T.Type, shape: ConvolutionShape, name: String, backward: Bool) {
    let pass = backward ? "fwd+bwd" : "fwd"
    let samples = shape.batch * shape.channels * shape.length
    let state = ConvolutionState<T>()
    let setup: @Sendable () async throws -> Void = {
        guard state.conv == nil else { return }
        state.conv = try FFTConvolution<T>(shape: shape, threads: ProcessInfo.processInfo.environment["SSM_THREADS"].flatMap { Int($0) })
        try? FFT.exportWisdom(to: wisdomPath)
        var rng = SplitMix64(seed: 42)
        func next() -> T { T.random(in: -1 ..< 1, using: &rng) }
        state.u = (0 ..< shape.inputCount).map { _ in next() }
        state.k = (0 ..< shape.kernelCount).map { _ in next() / T(shape.length) }
        state.d = (0 ..< shape.skipCount).map { _ in next() }
        state.y = [T](repeating: 0, count: shape.outputCount)
        if backward {
            state.dY = state.y
            state.dU = state.u
            state.dK = state.k
            state.dD = state.d
        }
    }
    let configuration = Benchmark.Configuration(scalingFactor: .one, setup: setup)
    Benchmark("conv \(pass) \(name)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            try state.conv!.forward(u: state.u, kernel: state.k, skip: state.d, y: &state.y)
            if backward {
                try state.conv!.backward(dY: state.dY, u: state.u, kernel: state.k, skip: state.d,
                                         dU: &state.dU, dK: &state.dK, dD: &state.dD)
            }
        }
        benchmark.measurement(.throughput, samples)
    }
    Benchmark("bound \(pass) \(name)", configuration: configuration) { benchmark in
        state.conv!.prepareTransformsOnly()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            state.conv!.runTransformsOnly(.forward)
            if backward { state.conv!.runTransformsOnly(.backward) }
        }
    }
}

/// One benchmark pair's convolution and buffers, made once by the setup closure and then used
/// by one benchmark at a time (package-benchmark runs benchmarks sequentially).
final class ConvolutionState<T: FFTScalar>: @unchecked Sendable {
    var conv: FFTConvolution<T>?
    var u: [T] = [], k: [T] = [], d: [T] = [], y: [T] = [], dY: [T] = []
    var dU: [T]? = nil, dK: [T]? = nil, dD: [T]? = nil
}
