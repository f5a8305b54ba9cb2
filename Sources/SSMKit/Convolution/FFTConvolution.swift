import ComplexModule
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Causal (or bidirectional) long convolution by FFT: the heart of convolution mode.
///
/// Legend: B batch · H channels · C kernel copies · L length · Lk kernel length · n FFT size.
/// Shapes are those of ``ConvolutionShape``: `u: (B, H, L)`, `k: (C, H, Lk)` (bidirectional
/// `(2, H, Lk)`), `D: (C, H)`, `y: (B, C, H, L)`.
///
///     y = irfft(rfft(u, n) · rfft(k + D·δ, n), n)[0 ..< L],  n = fast size ≥ L + Lk − 1
///
/// The skip D is folded into tap 0 of the kernel, so `D·u` costs nothing and dD is the lag-0
/// value of dK's correlation. The kernel spectra `c(C, H, n/2+1)` are computed once per call,
/// scaled by 1/n (the one place the transform's normalization is applied to outputs that feed
/// y and dU) and shared by the whole batch. Each (b, h) row then costs one forward and C inverse
/// transforms, run on ``threads`` threads with per-thread scratch: there is never a (B, H, n)
/// complex intermediate. Memory: C·H·(n/2+1) complex values plus (4 + C)·n scalars per thread.
///
/// An instance owns its scratch, so one instance serves one caller at a time; create one per
/// thread to convolve concurrently (plans are shared through ``FFT``'s cache, so results are
/// bit-identical). Steady-state ``forward(u:kernel:skip:y:)`` and
/// ``backward(dY:u:kernel:skip:dU:dK:dD:)`` allocate nothing.
public final class FFTConvolution<T: FFTScalar> {
    /// The problem this instance was made for.
    public let shape: ConvolutionShape
    /// Worker threads per call.
    public let threads: Int
    /// FFT size n.
    public let fftSize: Int
    @usableFromInline let fft: RealFFT<T>
    /// Complex scalars between consecutive spectra rows (n/2 + 1 rounded up to 64 bytes).
    @usableFromInline let spectrumStride: Int
    /// Real scalars between consecutive per-worker real rows (n rounded up to 64 bytes).
    @usableFromInline let realStride: Int
    /// Kernel spectra, `c(C, H, n/2+1)` at ``spectrumStride``; C = 1 when bidirectional.
    @usableFromInline let kernelSpectra: AlignedBuffer<Complex<T>>
    /// Per worker: one real row.
    @usableFromInline let realScratch: AlignedBuffer<T>
    /// Per worker: `3 + C` spectra rows (input, product or dy, dU accumulator, C dK accumulators).
    @usableFromInline let complexScratch: AlignedBuffer<Complex<T>>
    @usableFromInline let complexRowsPerWorker: Int
    @usableFromInline let claim = Atomic<Int>(0)

    /// Plans (or fetches cached plans for) the transforms of `shape` and allocates all scratch.
    /// - Parameters:
    ///   - threads: worker threads per call (default: the number of online processors).
    ///   - effort: FFTW planner effort (default ``FFT/defaultEffort``).
    /// - Throws: ``SSMError`` when the shape is invalid.
    public init(shape: ConvolutionShape, threads: Int? = nil, effort: FFTPlannerEffort? = nil) throws(SSMError) {
        try shape.validate()
        if let threads, threads < 1 {
            throw SSMError.option(name: "threads", expected: "a positive thread count, got \(threads)")
        }
        self.shape = shape
        self.threads = threads ?? onlineProcessorCount()
        fftSize = shape.fftSize
        fft = FFT.plan(size: fftSize, as: T.self, effort: effort)
        spectrumStride = alignedStride(fftSize / 2 + 1, of: Complex<T>.self)
        realStride = alignedStride(fftSize, of: T.self)
        kernelSpectra = AlignedBuffer(count: shape.kernelCopies * shape.channels * spectrumStride)
        realScratch = AlignedBuffer(count: self.threads * realStride)
        complexRowsPerWorker = 3 + shape.kernelCopies
        complexScratch = AlignedBuffer(count: self.threads * complexRowsPerWorker * spectrumStride)
    }

    // MARK: forward

    /// y = k ∗ u + D·u (causal, or bidirectional per ``ConvolutionShape``). Overwrites `y`.
    ///
    /// - Parameters: `u: (B, H, L)`, `kernel: (C or 2, H, Lk)`, `skip: (C, H)` or nil,
    ///   `y: (B, C, H, L)`; pointers to at least that many elements.
    /// - Complexity: O(B·H·C·n log n) time on ``threads`` threads.
    @inlinable
    public func forward(u: UnsafePointer<T>, kernel: UnsafePointer<T>, skip: UnsafePointer<T>?,
                        y: UnsafeMutablePointer<T>) {
        computeKernelSpectra(kernel: kernel, skip: skip)
        let (H, L, C, n) = (shape.channels, shape.length, shape.kernelCopies, fftSize)
        let count = fft.spectrumCount
        let (uShared, yShared) = (SharedPointer(u), SharedPointer(y))
        kernelSpectra.withPointer { spectra in
        realScratch.withPointer { realBase in
        complexScratch.withPointer { complexBase in
            parallelRows(shape.batch * H, workers: threads, claim: claim) { row, worker in
                let (b, h) = row.quotientAndRemainder(dividingBy: H)
                let real = realBase + worker * realStride
                let uf = complexBase + worker * complexRowsPerWorker * spectrumStride
                let product = uf + spectrumStride
                // real = u[b, h, :] zero-padded to n; uf = rfft(real)
                real.update(from: uShared.base + row * L, count: L)
                (real + L).update(repeating: 0, count: n - L)
                fft.forward(real, uf)
                for c in 0 ..< C {
                    let kf = spectra + (c * H + h) * spectrumStride
                    // The last copy may consume uf; earlier ones need it again (c2r destroys).
                    let target = c == C - 1 ? uf : product
                    spectralMultiply(uf, kf, into: target, count: count)
                    fft.inverse(target, real)
                    (yShared.base + ((b * C + c) * H + h) * L).update(from: real, count: L)
                }
            }
        }
        }
        }
    }

    /// Array form of ``forward(u:kernel:skip:y:)`` that checks every count.
    /// - Throws: ``SSMError/shape(argument:expected:actual:)`` naming the first wrong argument.
    public func forward(u: [T], kernel: [T], skip: [T]? = nil, y: inout [T]) throws(SSMError) {
        try check(u, "u", shape.inputCount, "(B, H, L)")
        try check(kernel, "k", shape.kernelCount, "(\(shape.bidirectional ? "2" : "C"), H, Lk)")
        if let skip { try check(skip, "D", shape.skipCount, "(C, H)") }
        try check(y, "y", shape.outputCount, "(B, C, H, L)")
        u.withUnsafeBufferPointer { u in
            kernel.withUnsafeBufferPointer { k in
                withOptionalPointer(skip) { d in
                    y.withUnsafeMutableBufferPointer { y in
                        forward(u: u.baseAddress!, kernel: k.baseAddress!, skip: d, y: y.baseAddress!)
                    }
                }
            }
        }
    }

    /// Fills ``kernelSpectra`` with rfft(k + D·δ, n) / n for every (c, h).
    /// Bidirectional: the anti-causal half sits at the end of the circular buffer, reversed,
    /// so that tap k[1, h, j−1] lands at index n − j and multiplies u[t + j].
    @inlinable
    func computeKernelSpectra(kernel: UnsafePointer<T>, skip: UnsafePointer<T>?) {
        let (H, Lk, n, C) = (shape.channels, shape.kernelLength, fftSize, shape.kernelCopies)
        let bidirectional = shape.bidirectional
        let scale = 1 / T(n)
        let count = fft.spectrumCount
        let (kShared, dShared) = (SharedPointer(kernel), skip.map { SharedPointer($0) })
        kernelSpectra.withPointer { spectra in
        realScratch.withPointer { realBase in
            let spectraShared = SharedPointer(spectra)
            parallelRows(C * H, workers: threads, claim: claim) { row, worker in
                let real = realBase + worker * realStride
                real.update(repeating: 0, count: n)
                real.update(from: kShared.base + row * Lk, count: Lk)
                if bidirectional {
                    let backward = kShared.base + (H + row) * Lk
                    for j in 1 ... Lk { real[n - j] = backward[j - 1] }
                }
                if let d = dShared { real[0] += d.base[row] }
                let out = spectraShared.base + row * spectrumStride
                fft.forward(real, out)
                let s = UnsafeMutableRawPointer(out).assumingMemoryBound(to: T.self)
                for i in 0 ..< 2 * count { s[i] *= scale }
            }
        }
        }
    }
}

// MARK: helpers shared by the convolution files

@usableFromInline
func check<T>(_ array: [T], _ name: String, _ count: Int, _ shape: String) throws(SSMError) {
    if array.count != count {
        throw SSMError.shape(argument: name, expected: "\(shape) = \(count) elements", actual: [array.count])
    }
}

@usableFromInline
func withOptionalPointer<T, R>(_ array: [T]?, _ body: (UnsafePointer<T>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

@usableFromInline
func withOptionalMutablePointer<T, R>(_ array: inout [T]?, _ body: (UnsafeMutablePointer<T>?) -> R) -> R {
    guard array != nil else { return body(nil) }
    return array!.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}

/// The number of processors online, at least 1.
public func onlineProcessorCount() -> Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}
