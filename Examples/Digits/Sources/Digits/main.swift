// The README's three examples, as a client package runs them.
import SSMKit
import SSMTraining

// 1. Train by `import`: an S4D model on the bundled 8×8 digits, evaluated in both modes.
let task = try TrainingTask(.digits)                         // sklearn's digits, shipped with SSMTraining
let model = try SequenceModel<Float>(configuration: try ModelConfiguration(
    family: .s4d, layers: 4, width: 64, state: 64, input: task.input, output: task.output))
var trainer = try Trainer(model: model, task: task,
                          configuration: try TrainingConfiguration(steps: 300, batch: 32, learningRate: 1e-2))
while trainer.step < trainer.configuration.steps {
    _ = try trainer.trainStep()                              // forward, loss, backward, clip, AdamW
}
let convolution = try trainer.evaluate()                     // validation set, convolution mode
let recurrent = try trainer.evaluate(recurrent: true)       // the same set, one step at a time
print("digits: validation accuracy \(convolution.accuracy) (convolution), \(recurrent.accuracy) (recurrent)")

// 2. Cross-check the two modes: the S4D kernel applied by FFT against its recurrence.
let (H, N, L) = (8, 64, 4096)
let p = try S4DParameters<Double>(channels: H, state: N, initialization: .legs, seed: 1)
let kernel = try S4DKernel<Double>(channels: H, modes: N / 2, discretization: .zoh)
var k = [Double](repeating: 0, count: H * L)
try kernel.forward(length: L, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag, b: p.b, k: &k)
var rng = SplitMix64(seed: 2)
let u = (0 ..< H * L).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
var yConvolution = [Double](repeating: 0, count: H * L), yRecurrent = yConvolution
try FFTConvolution<Double>(shape: ConvolutionShape(batch: 1, channels: H, length: L)).forward(u: u, kernel: k, y: &yConvolution)
let engine = StepEngine(try S4DRecurrence(kernel: kernel, logDt: p.logDt, c: p.c, logAReal: p.logAReal, aImag: p.aImag,
                                          b: p.b, d: [Double](repeating: 0, count: H)))
var state = try engine.makeState(batch: 1)
try engine.run(&state, u: u, y: &yRecurrent, length: L)
let scale = yConvolution.map(abs).max()!
let error = zip(yConvolution, yRecurrent).map { abs($0 - $1) }.max()! / scale
print("S4D-LegS, L = \(L): convolution vs recurrent mode, max relative difference \(error)")

// 3. Benchmark: the FFT convolution against the FFTW transforms it runs (the bound).
let shape = ConvolutionShape(batch: 1, channels: 256, length: 1 << 14)
let conv = try FFTConvolution<Float>(shape: shape)
let x = [Float](repeating: 0.5, count: shape.inputCount), taps = [Float](repeating: 1e-3, count: shape.kernelCount)
var y = [Float](repeating: 0, count: shape.outputCount)
func bestSeconds(of repeats: Int = 5, _ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0 ..< repeats {
        let d = try ContinuousClock().measure(body)
        best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
    return best
}
try conv.forward(u: x, kernel: taps, y: &y)                  // warm-up
let convolutionTime = try bestSeconds { try conv.forward(u: x, kernel: taps, y: &y) }
conv.prepareTransformsOnly()
let boundTime = bestSeconds { conv.runTransformsOnly(.forward) }
print("FFT convolution H = 256, L = 2^14: \(convolutionTime * 1e3) ms, FFTW bound \(boundTime * 1e3) ms, ratio \(convolutionTime / boundTime)")
