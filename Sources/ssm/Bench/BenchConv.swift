import ArgumentParser
import SSMKit

/// `ssm bench conv`: FFT convolution throughput next to the FFTW bound of the same run.
struct BenchConv: ParsableCommand, BenchRows {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Time the FFT convolution and the FFTW bound (its transforms alone) in one run.",
        discussion: """
        Each row times the convolution (forward, or forward + backward with --backward) and, \
        interleaved with it, the same transforms with the same plans and threads and nothing \
        else (the bound). ratio = median time / median bound. Planning and one warm-up call are \
        excluded from the timed region and reported as plan_seconds.
        """
    )

    @OptionGroup var options: BenchOptions

    @Flag(name: .long, help: "Time forward + backward (all gradients) instead of forward alone.")
    var backward = false

    @Option(name: .long, help: "Kernel copies C (output channels).")
    var copies: Int = 1

    func run() throws {
        try options.withWisdom(rows)
    }

    func rows() throws {
        try options.forEachRow(header: "op    pass      B     H        L        n  precision thr  median_ms     min_ms     max_ms  Msamples/s   bound_ms  ratio  plan_ms", self)
    }

    func row<T: FFTScalar>(_: T.Type, B: Int, H: Int, L: Int) throws {
        let shape = ConvolutionShape(batch: B, channels: H, length: L, kernelCopies: copies)
        var conv: FFTConvolution<T>!
        var u = [T](), k = [T](), y = [T](), dY = [T]()
        var dU: [T]? = nil, dK: [T]? = nil, dD: [T]? = nil
        let d = [T](repeating: 0.5, count: shape.skipCount)
        let planSeconds = try seconds {
            conv = try FFTConvolution<T>(shape: shape, threads: options.threads, effort: options.effort)
            var rng = SplitMix64(seed: 42)
            u = (0 ..< shape.inputCount).map { _ in T.random(in: -1 ..< 1, using: &rng) }
            k = (0 ..< shape.kernelCount).map { _ in T.random(in: -1 ..< 1, using: &rng) / T(L) }
            y = [T](repeating: 0, count: shape.outputCount)
            if backward {
                dY = y
                dU = u; dK = k; dD = d
            }
            try step(conv, u, k, d, &y, dY, &dU, &dK, &dD)  // warm-up
            conv.prepareTransformsOnly()
            runBound(conv)
        }
        var times: [Double] = [], bounds: [Double] = []
        for _ in 0 ..< options.repeats {
            times.append(try seconds { try step(conv, u, k, d, &y, dY, &dU, &dK, &dD) })
            conv.prepareTransformsOnly()
            bounds.append(seconds { runBound(conv) })
        }
        let t = Timing(times), bound = Timing(bounds)
        let samples = Double(B * H * L)
        let pass = backward ? "forward+backward" : "forward"
        if options.json {
            print(jsonLine([("op", "conv"), ("model", "none"), ("pass", pass), ("batch", B), ("channels", H),
                            ("state", 0), ("length", L), ("kernel_copies", copies), ("fft_size", conv.fftSize),
                            ("precision", T.precisionName), ("threads", conv.threads),
                            ("seconds", t.median), ("seconds_min", t.min), ("seconds_max", t.max),
                            ("samples_per_second", samples / t.median), ("bound_seconds", bound.median),
                            ("ratio", t.median / bound.median), ("plan_seconds", planSeconds)]))
        } else {
            print("conv  \(backward ? "fwd+bwd" : "fwd    ") \(column(B, 3)) \(column(H, 5)) \(column(L, 8)) \(column(conv.fftSize, 8))  \(T.precisionName)   \(column(conv.threads, 3)) "
                + "\(column(t.median * 1e3, 10, 3)) \(column(t.min * 1e3, 10, 3)) \(column(t.max * 1e3, 10, 3)) \(column(samples / t.median / 1e6, 11, 2)) "
                + "\(column(bound.median * 1e3, 10, 3)) \(column(t.median / bound.median, 6, 3)) \(column(planSeconds * 1e3, 8, 0))")
        }
    }

    func step<T: FFTScalar>(_ conv: FFTConvolution<T>, _ u: [T], _ k: [T], _ d: [T], _ y: inout [T],
                            _ dY: [T], _ dU: inout [T]?, _ dK: inout [T]?, _ dD: inout [T]?) throws {
        try conv.forward(u: u, kernel: k, skip: d, y: &y)
        if backward { try conv.backward(dY: dY, u: u, kernel: k, skip: d, dU: &dU, dK: &dK, dD: &dD) }
    }

    func runBound<T: FFTScalar>(_ conv: FFTConvolution<T>) {
        conv.runTransformsOnly(.forward)
        if backward { conv.runTransformsOnly(.backward) }
    }
}

/// `x` with `places` digits after the point.
func formatFixed(_ x: Double, _ places: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    if places == 0 { return "\(Int(x.rounded()))" }
    let scale = (0 ..< places).reduce(1.0) { r, _ in r * 10 }
    let r = (x * scale).rounded() / scale
    var s = "\(r)"
    if s.contains("e") { return s }
    if !s.contains(".") { s += "." }
    let decimals = s.count - 1 - s.distance(from: s.startIndex, to: s.firstIndex(of: ".")!)
    if decimals < places { s += String(repeating: "0", count: places - decimals) }
    return s
}

extension BenchConv {
    func measureRow<T: SSMScalar>(_ t: T.Type, B: Int, H: Int, L: Int) throws { try row(t, B: B, H: H, L: L) }
}
