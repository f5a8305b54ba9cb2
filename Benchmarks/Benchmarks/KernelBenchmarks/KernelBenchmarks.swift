// Kernel generation, float32, N = 64: the S4D Vandermonde kernel (forward, and forward +
// backward) at H = 256 for L = 2^10 and 2^14, and the S4 DPLR kernel (Cauchy sums, Woodbury,
// inverse FFT; rank 1, one SSM per channel) at H = 256, L = 2^10 and H = 64, L = 2^14.
// `ssm bench kernel` covers other shapes and reports GFLOP/s.
// SSM_THREADS=N fixes the thread count (default: all cores).

import Benchmark
import Foundation
import SSMKit

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 20
    )
    let threads = ProcessInfo.processInfo.environment["SSM_THREADS"].flatMap { Int($0) }
    for L in [1 << 10, 1 << 14] {
        registerS4D(H: 256, L: L, backward: false, threads: threads)
        registerS4D(H: 256, L: L, backward: true, threads: threads)
    }
    registerS4(H: 256, L: 1 << 10, threads: threads)
    registerS4(H: 64, L: 1 << 14, threads: threads)
}

func registerS4D(H: Int, L: Int, backward: Bool, threads: Int?) {
    let N2 = 32
    Benchmark("s4d \(backward ? "fwd+bwd" : "fwd") H=\(H) L=2^\(L.trailingZeroBitCount)") { benchmark in
        let kernel = try S4DKernel<Float>(channels: H, modes: N2, threads: threads)
        let p = try S4DParameters<Float>(channels: H, state: 2 * N2, initialization: .lin, seed: 7)
        var k = [Float](repeating: 0, count: H * L)
        var rng = SplitMix64(seed: 8)
        let dK = (0 ..< H * L).map { _ in Float.random(in: -1 ..< 1, using: &rng) }
        var dLogDt = [Float](repeating: 0, count: H), dLogAReal = [Float](repeating: 0, count: H * N2)
        var dAImag = dLogAReal, dC = [Complex<Float>](repeating: .zero, count: H * N2)
        var dB: [Complex<Float>]? = nil
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try kernel.forward(length: L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, k: &k)
            if backward {
                try kernel.backward(length: L, dK: dK, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag,
                                    dLogDt: &dLogDt, dC: &dC, dLogAReal: &dLogAReal, dAImag: &dAImag, dB: &dB)
            }
        }
        benchmark.stopMeasurement()
        benchmark.measurement(.throughput, H * L)
    }
}

func registerS4(H: Int, L: Int, threads: Int?) {
    let N2 = 32
    Benchmark("s4 fwd H=\(H) L=2^\(L.trailingZeroBitCount)") { benchmark in
        let form = try HiPPO.nplr(.legs, size: 2 * N2)
        var rng = SplitMix64(seed: 9)
        let invDt = (0 ..< H).map { _ in Float(Double.random(in: Double.log(1e-3) ... Double.log(1e-1), using: &rng)) }
        let c = (0 ..< H * N2).map { _ in Complex(Float.random(in: -1 ..< 1, using: &rng), Float.random(in: -1 ..< 1, using: &rng)) }
        let kernel = try S4Kernel<Float>(copies: 1, channels: H, ssms: 1, modes: N2, rank: 1, threads: threads)
        let aReal = form.lambda.map { Float(Double.log(-$0.real)) }, aImag = form.lambda.map { Float(-$0.imaginary) }
        let b = form.b.map { Complex(Float($0.real), Float($0.imaginary)) }, p = form.p.map { Complex(Float($0.real), Float($0.imaginary)) }
        var k = [Float](repeating: 0, count: H * L)
        try kernel.forward(length: L, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: c, k: &k)  // plans the FFT
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try kernel.forward(length: L, invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: c, k: &k)
        }
        benchmark.stopMeasurement()
        benchmark.measurement(.throughput, H * L)
    }
}
