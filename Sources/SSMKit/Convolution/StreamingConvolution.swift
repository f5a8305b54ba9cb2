import ComplexModule

/// A causal convolution of a sequence of any length, fed block by block: uniformly partitioned
/// overlap-save. Legend: P block length · Lk kernel length · M = ⌈Lk/P⌉ partitions.
///
///     y[t] = Σ_{s=0}^{Lk−1} k[s]·u[t − s] + D·u[t]          (u[t] = 0 for t < 0)
///
/// The kernel is cut into M partitions k_m = k[mP ..< (m+1)P], each zero-padded to 2P and
/// transformed once: K_m. For input block j (u[jP ..< (j+1)P]) the transform X_j of the 2P
/// window [block j − 1, block j] joins a delay line of the last M window spectra, and
///
///     y[jP ..< (j+1)P] = last P samples of irfft(Σ_m K_m · X_{j−m}) / 2P
///
/// Memory is 2M + O(1) half spectra of P + 1 complex values, whatever the input's length:
/// about 2·Lk complex values for a long kernel, with P chosen near Lk for a short one. Work per
/// output sample is one 2P-point r2c and c2r pair over P samples plus M complex products.
/// Each instance is one channel's stream; it holds state and is not thread-safe.
public final class StreamingConvolution<T: FFTScalar> {
    public let blockLength: Int
    public let kernelLength: Int
    public let partitions: Int
    let skip: T
    let fft: RealFFT<T>
    let spectrumCount: Int
    let stride: Int
    /// conj(K_m), m = 0 … M − 1 (stored conjugated: the products use out += conj(a)·b).
    let kernelSpectra: AlignedBuffer<Complex<T>>
    /// The delay line: the last M window spectra, slot (j mod M) holding X_j.
    let history: AlignedBuffer<Complex<T>>
    let window: AlignedBuffer<T>
    let sum: AlignedBuffer<Complex<T>>
    let output: AlignedBuffer<T>
    /// Blocks consumed so far.
    public private(set) var blocks = 0

    /// The largest block length accepted (2P must stay an FFT size FFTW plans quickly).
    public static var maximumBlockLength: Int { 1 << 24 }

    /// A stream for `kernel` (Lk taps) with skip D, in blocks of `blockLength` samples
    /// (default: the smallest power of two ≥ Lk, clamped to [2^10, 2^16]).
    /// - Throws: ``SSMError`` for an empty kernel, a non-finite tap or D, or a block length
    ///   outside 1 … ``maximumBlockLength``.
    public init(kernel: [T], skip: T = 0, blockLength: Int? = nil, effort: FFTPlannerEffort? = nil) throws(SSMError) {
        guard !kernel.isEmpty else { throw SSMError.shape(argument: "kernel", expected: "at least one tap", actual: [0]) }
        guard kernel.allSatisfy(\.isFinite) else { throw SSMError.value(argument: "kernel", expected: "finite taps") }
        guard skip.isFinite else { throw SSMError.value(argument: "skip", expected: "a finite D") }
        let P = blockLength ?? Self.defaultBlockLength(kernelLength: kernel.count)
        guard P >= 1, P <= Self.maximumBlockLength else {
            throw SSMError.value(argument: "block", expected: "a block length in 1 … \(Self.maximumBlockLength), got \(P)")
        }
        self.blockLength = P
        self.kernelLength = kernel.count
        self.skip = skip
        let M = (kernel.count + P - 1) / P
        partitions = M
        fft = FFT.plan(size: 2 * P, as: T.self, effort: effort)
        spectrumCount = P + 1
        stride = alignedStride(P + 1, of: Complex<T>.self)
        kernelSpectra = AlignedBuffer(count: M * stride)
        history = AlignedBuffer(count: M * stride)
        window = AlignedBuffer(count: 2 * P)
        sum = AlignedBuffer(count: stride)
        output = AlignedBuffer(count: 2 * P)
        // K_m with the 1/2P normalization folded in, conjugated.
        let scale = 1 / T(2 * P)
        window.withPointer { w in
            kernelSpectra.withPointer { spectra in
                for m in 0 ..< M {
                    for i in 0 ..< 2 * P { w[i] = 0 }
                    for i in 0 ..< min(P, kernel.count - m * P) { w[i] = kernel[m * P + i] * scale }
                    fft.forward(w, spectra + m * stride)
                    for i in 0 ..< spectrumCount { spectra[m * stride + i] = spectra[m * stride + i].conjugate }
                }
                for i in 0 ..< 2 * P { w[i] = 0 }
            }
        }
    }

    /// The default block length: the smallest power of two ≥ the kernel length, clamped to [2^10, 2^16].
    public static func defaultBlockLength(kernelLength: Int) -> Int {
        var p = 1 << 10
        while p < kernelLength, p < 1 << 16 { p <<= 1 }
        return p
    }

    /// Consumes the next `count` ≤ P input samples (fewer only for the last block: the rest
    /// counts as zeros) and writes `count` outputs.
    public func process(_ input: UnsafePointer<T>, count: Int, into out: UnsafeMutablePointer<T>) {
        let P = blockLength, M = partitions
        precondition(count >= 0 && count <= P, "StreamingConvolution.process: \(count) samples for blocks of \(P)")
        window.withPointer { w in
            history.withPointer { h in
                kernelSpectra.withPointer { k in
                    sum.withPointer { s in
                        output.withPointer { o in
                            // The window is [previous block, this block]: shift, then append.
                            for i in 0 ..< P { w[i] = w[P + i] }
                            for i in 0 ..< count { w[P + i] = input[i] }
                            for i in count ..< P { w[P + i] = 0 }
                            let slot = blocks % M
                            fft.forward(w, h + slot * stride)
                            // Σ_m K_m · X_{j−m}: slot (j − m) mod M holds X_{j−m} (zero before block 0).
                            for i in 0 ..< spectrumCount { s[i] = .zero }
                            for m in 0 ..< min(M, blocks + 1) {
                                let past = (slot - m + M) % M
                                spectralMultiplyConjugate(k + m * stride, h + past * stride, into: s, count: spectrumCount, accumulate: true)
                            }
                            fft.inverse(s, o)
                            for i in 0 ..< count { out[i] = o[P + i] + skip * w[P + i] }
                        }
                    }
                }
            }
        }
        blocks += 1
    }

    /// Starts a new stream (zero history).
    public func reset() {
        history.withPointer { h in for i in 0 ..< partitions * stride { h[i] = .zero } }
        window.withPointer { w in for i in 0 ..< 2 * blockLength { w[i] = 0 } }
        blocks = 0
    }

    /// Bytes this stream holds, whatever the input's length.
    public var memoryBytes: Int {
        (2 * partitions + 1) * stride * MemoryLayout<Complex<T>>.stride + 4 * blockLength * MemoryLayout<T>.stride
    }
}
