import ArgumentParser
import SSMKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ssm conv`: a causal long convolution of .npy files, streamed block by block (inputs larger
/// than memory) or in memory.
struct Conv: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convolve a .npy sequence with a .npy kernel: y = k ∗ u + D·u, causal.",
        discussion: """
        --input: (L) or (H, L), float32 or float64, C order. --kernel: (Lk) for every channel or \
        (H, Lk), Lk ≤ L. --output gets the input's shape and dtype; it is written to a temporary \
        file renamed into place at the end, so an error leaves nothing at the path. By default the \
        convolution streams: uniformly partitioned overlap-save (StreamingConvolution) reads and \
        writes one block at a time, so memory is bounded by the kernel, not by L. --in-memory \
        reads everything and runs FFTConvolution instead. The last line is a JSON summary with \
        the peak resident memory.
        """
    )

    @Option(name: .long, help: "Input .npy file, (L) or (H, L).") var input: String
    @Option(name: .long, help: "Kernel .npy file, (Lk) or (H, Lk).") var kernel: String
    @Option(name: .long, help: "Output .npy file.") var output: String
    @Option(name: .long, help: "The skip D (one value for every channel).") var skip: Double = 0
    @Option(name: .long, help: "Streaming block length P (default: the smallest power of two ≥ Lk, in 2^10 … 2^16).") var block: Int?
    @Option(name: .long, help: "Compute in float32 or float64 (default: the input's dtype).") var precision: Precision?
    @Flag(name: .long, help: "Read everything into memory and use FFTConvolution.") var inMemory = false
    @Option(name: .long, help: "FFTW planner effort: estimate, measure, patient or exhaustive.") var effort: FFTPlannerEffort = .estimate

    func validate() throws {
        if let block, block < 1 || block > StreamingConvolution<Float>.maximumBlockLength {
            throw ValidationError("--block: expected 1 … \(StreamingConvolution<Float>.maximumBlockLength), got \(block)")
        }
        if !skip.isFinite { throw ValidationError("--skip: expected a finite D, got \(skip)") }
    }

    func run() throws {
        let u = try NPYFile(reading: input)
        let k = try NPYFile(reading: kernel)
        guard k.length <= u.length else {
            throw SSMError.shape(argument: "--kernel", expected: "Lk ≤ L = \(u.length)", actual: k.shape)
        }
        guard k.channels == 1 || k.channels == u.channels else {
            throw SSMError.shape(argument: "--kernel", expected: "(Lk) or (\(u.channels), Lk)", actual: k.shape)
        }
        switch precision ?? (u.dtype == .float32 ? .float32 : .float64) {
        case .float32: try convolve(Float.self, u, k)
        case .float64: try convolve(Double.self, u, k)
        }
    }

    func convolve<T: FFTScalar>(_: T.Type, _ u: NPYFile, _ k: NPYFile) throws {
        let (H, L, Lk) = (u.channels, u.length, k.length)
        let y = try NPYFile(writing: output, dtype: u.dtype, shape: u.shape)
        let progress = Progress(total: H * L, unit: "samples", interactive: isatty(2) != 0)
        var taps = [T](repeating: 0, count: Lk)
        let clock = ContinuousClock(), start = clock.now
        var streamBytes = 0, blockLength = 0, partitions = 0
        if inMemory {
            var uAll = [T](repeating: 0, count: H * L), kAll = [T](repeating: 0, count: H * Lk), yAll = uAll
            try uAll.withUnsafeMutableBufferPointer { p throws in for h in 0 ..< H { try u.read(channel: h, start: 0, count: L, into: p.baseAddress! + h * L) } }
            try kAll.withUnsafeMutableBufferPointer { p throws in
                for h in 0 ..< H { try k.read(channel: k.channels == 1 ? 0 : h, start: 0, count: Lk, into: p.baseAddress! + h * Lk) }
            }
            guard uAll.allSatisfy(\.isFinite) else { throw SSMError.value(argument: "--input", expected: "finite values") }
            let conv = try FFTConvolution<T>(shape: ConvolutionShape(batch: 1, channels: H, length: L, kernelLength: Lk),
                                              effort: effort)
            try conv.forward(u: uAll, kernel: kAll, skip: [T](repeating: T(skip), count: H), y: &yAll)
            try yAll.withUnsafeBufferPointer { p throws in for h in 0 ..< H { try y.write(channel: h, start: 0, count: L, from: p.baseAddress! + h * L) } }
            progress.update(done: H * L)
        } else {
            for h in 0 ..< H {
                try taps.withUnsafeMutableBufferPointer { p throws in try k.read(channel: k.channels == 1 ? 0 : h, start: 0, count: Lk, into: p.baseAddress!) }
                let stream = try StreamingConvolution<T>(kernel: taps, skip: T(skip), blockLength: block, effort: effort)
                (streamBytes, blockLength, partitions) = (stream.memoryBytes, stream.blockLength, stream.partitions)
                let P = stream.blockLength
                var inBlock = [T](repeating: 0, count: P), outBlock = inBlock
                var position = 0
                while position < L {
                    let count = min(P, L - position)
                    try inBlock.withUnsafeMutableBufferPointer { p throws in try u.read(channel: h, start: position, count: count, into: p.baseAddress!) }
                    for i in 0 ..< count where !inBlock[i].isFinite {
                        throw SSMError.value(argument: "--input", expected: "finite values (channel \(h), sample \(position + i))")
                    }
                    inBlock.withUnsafeBufferPointer { i in outBlock.withUnsafeMutableBufferPointer { o in stream.process(i.baseAddress!, count: count, into: o.baseAddress!) } }
                    try outBlock.withUnsafeBufferPointer { p throws in try y.write(channel: h, start: position, count: count, from: p.baseAddress!) }
                    position += count
                    progress.update(done: h * L + position)
                }
            }
        }
        try y.finish()
        progress.finish()
        let secondsTaken = (clock.now - start).seconds
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        // ru_maxrss is in KiB on Linux (bytes on Darwin).
        #if os(Linux)
        let rssUnit = 1024
        #else
        let rssUnit = 1
        #endif
        print(jsonLine([("op", inMemory ? "conv-in-memory" : "conv-stream"), ("channels", H), ("length", L), ("kernel_length", Lk),
                        ("precision", T.precisionName), ("block", blockLength), ("partitions", partitions), ("seconds", secondsTaken),
                        ("samples_per_second", Double(H * L) / secondsTaken), ("stream_bytes", streamBytes),
                        ("peak_rss_bytes", Int(usage.ru_maxrss) * rssUnit)]))
    }
}

/// Progress on stderr: a bar redrawn in place on a terminal, else a line every tenth of the
/// work. `ssm train` counts steps, `ssm conv` samples.
final class Progress {
    let total: Int, unit: String, interactive: Bool
    var lastTenth = -1

    init(total: Int, unit: String, interactive: Bool) { (self.total, self.unit, self.interactive) = (total, unit, interactive) }

    func update(done: Int, figures: String = "") {
        let count = "\(done)/\(total) \(unit)" + (figures.isEmpty ? "" : " · \(figures)")
        if interactive {
            let filled = 30 * done / max(total, 1)
            writeStandardError("\r" + String(repeating: "█", count: filled) + String(repeating: "·", count: 30 - filled) + " \(count)\u{1B}[K")
        } else if done * 10 / max(total, 1) != lastTenth || done == total {
            lastTenth = done * 10 / max(total, 1)
            writeStandardError(count + "\n")
        }
    }

    func finish() { if interactive { writeStandardError("\n") } }
}

/// Writes `text` to standard error.
func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
}
