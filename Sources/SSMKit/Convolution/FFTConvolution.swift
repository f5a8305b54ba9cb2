import ComplexModule

/// Causal (or bidirectional) long convolution by FFT: the heart of convolution mode.
///
/// Legend: B batch · H channels · C kernel copies · L length · Lk kernel length · n FFT size.
/// Shapes are those of ``ConvolutionShape``: `u: (B, H, L)`, `k: (C, H, Lk)` (bidirectional
/// `(2, H, Lk)`), `D: (C, H)`, `y: (B, C, H, L)`.
///
///     y = irfft(rfft(u, n) · rfft(k + D·δ, n) / n, n)[0 ..< L],  n = fast size ≥ L + Lk − 1
///
/// The skip D is folded into tap 0 of the kernel, so `D·u` costs nothing and dD is the lag-0
/// value of dK's correlation. Each kernel spectrum (scaled by 1/n on its taps: the one place the
/// transform's normalization enters y and dU) is computed once per call and shared by the whole
/// batch. Each (b, h) row then costs one forward and C inverse transforms.
///
/// Scheduling: tasks are handed to `WorkerPool`'s persistent threads and claimed one at a time.
/// With at least as many channels as threads, a task is one channel h: its C kernel
/// spectra go to the worker's scratch and stay in cache while the B rows of h are convolved, so
/// no spectrum ever travels through main memory. With fewer channels than threads, all C·H
/// spectra are computed first (in parallel) into a shared buffer and the B·H rows are the tasks.
/// Either way there is never a (B, H, n) complex intermediate. Memory: per thread 3 real rows and
/// 3 + 2C half spectra; the shared buffer adds C·H half spectra only in the second regime.
///
/// An instance owns its scratch, so one instance serves one caller at a time; create one per
/// thread to convolve concurrently (plans are shared through ``FFT``'s cache, so results are
/// bit-identical whatever the thread count or caller). Steady-state
/// `forward(u:kernel:skip:y:)` and `backward(dY:u:kernel:skip:dU:dK:dD:)` allocate nothing.
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
    /// Real scalars between consecutive real rows (n rounded up to 64 bytes).
    @usableFromInline let realStride: Int
    /// Whether the forward pass schedules (b, h) rows over precomputed shared spectra (H < threads)
    /// rather than whole channels.
    @usableFromInline let sharesKernelSpectra: Bool
    /// `c(C, H, n/2+1)` kernel spectra when ``sharesKernelSpectra``; empty otherwise.
    @usableFromInline let kernelSpectra: AlignedBuffer<Complex<T>>
    /// Per worker: 3 real rows (see ``Scratch``).
    @usableFromInline let realScratch: AlignedBuffer<T>
    /// Per worker: 3 + 2C half spectra (see ``Scratch``).
    @usableFromInline let complexScratch: AlignedBuffer<Complex<T>>
    /// What the workers of the current parallel section do with each task index, and the
    /// arguments of the current call: set by the calling thread before a section starts and
    /// only read by the workers (see ``runParallel(_:count:)``).
    @usableFromInline var phase = Phase.forwardChannels
    @usableFromInline var arguments = Arguments()
    /// The one closure handed to the worker pool, made on the first call: handing over a fresh
    /// non-escaping closure per call would cost an allocation (`withoutActuallyEscaping` boxes
    /// its context), and steady-state calls allocate nothing. It is made inside the inlinable
    /// ``runParallel(_:count:)`` so that it is compiled specialized for the caller's `T`.
    @usableFromInline var task: (@Sendable (Int, Int) -> Void)?

    /// A strong reference handed to an `OperationRecorder`'s replay closures.
    struct RetainedConvolution: @unchecked Sendable { let convolution: FFTConvolution }

    /// `self` for the worker closure: the instance outlives every section it runs, and workers
    /// only read its configuration and the current ``arguments``.
    @usableFromInline
    struct TaskTarget: @unchecked Sendable {
        @usableFromInline unowned(unsafe) let convolution: FFTConvolution
        @inlinable init(_ convolution: FFTConvolution) { self.convolution = convolution }
    }

    /// The kinds of parallel sections.
    @usableFromInline
    enum Phase: Sendable {
        case kernelSpectra, forwardRows, forwardChannels, backwardChannels
        case boundKernelSpectra, boundForwardRows, boundForwardChannels, boundBackwardChannels
    }

    /// The pointers and flags of the call in progress.
    @usableFromInline
    struct Arguments {
        @usableFromInline var u: UnsafeMutablePointer<T>?
        @usableFromInline var kernel: UnsafeMutablePointer<T>?
        @usableFromInline var skip: UnsafeMutablePointer<T>?
        @usableFromInline var y: UnsafeMutablePointer<T>?
        @usableFromInline var dY: UnsafeMutablePointer<T>?
        @usableFromInline var dU: UnsafeMutablePointer<T>?
        @usableFromInline var dK: UnsafeMutablePointer<T>?
        @usableFromInline var dD: UnsafeMutablePointer<T>?
        /// Forward writes GELU′(z) here (and GELU(z) into y); backward multiplies dY by it.
        @usableFromInline var outputDerivative: UnsafeMutablePointer<T>?
        @inlinable init() {}
    }

    /// One worker's rows of scratch.
    @usableFromInline
    struct Scratch {
        /// Receives inputs (u, dY) in its first L samples. FFTW's r2c preserves its input, so
        /// the padding [L, n) stays zero from allocation on and is never refilled.
        @usableFromInline let input: UnsafeMutablePointer<T>
        /// Receives c2r outputs.
        @usableFromInline let output: UnsafeMutablePointer<T>
        /// Receives kernel taps at [0, Lk) (and, bidirectional, [n − Lk, n)); like ``input`` it
        /// is only read by r2c, so the zeros between stay from allocation on.
        @usableFromInline let kernelInput: UnsafeMutablePointer<T>
        /// rfft of the input row.
        @usableFromInline let spectrum: UnsafeMutablePointer<Complex<T>>
        /// A product (forward, C > 1) or rfft(dY) (backward).
        @usableFromInline let product: UnsafeMutablePointer<Complex<T>>
        /// Σ_c conj(K̂) · dŶ, the spectrum of dU.
        @usableFromInline let dUSpectrum: UnsafeMutablePointer<Complex<T>>
        /// C kernel spectra of the worker's current channel.
        @usableFromInline let kernels: UnsafeMutablePointer<Complex<T>>
        /// C accumulators Σ_b conj(Û) · dŶ, the spectra of dK.
        @usableFromInline let dKSpectra: UnsafeMutablePointer<Complex<T>>

        /// Lays out one worker's rows: 3 real rows at `real`, 3 + 2C half spectra at `complex`.
        @inlinable @inline(__always)
        init(real: UnsafeMutablePointer<T>, realStride: Int, complex: UnsafeMutablePointer<Complex<T>>,
             spectrumStride: Int, copies: Int) {
            input = real
            output = real + realStride
            kernelInput = real + 2 * realStride
            spectrum = complex
            product = complex + spectrumStride
            dUSpectrum = complex + 2 * spectrumStride
            kernels = complex + 3 * spectrumStride
            dKSpectra = complex + (3 + copies) * spectrumStride
        }
    }

    /// Plans (or fetches cached plans for) the transforms of `shape` and allocates all scratch.
    /// - Parameters:
    ///   - shape: the batch, channels, lengths and kernel layout of every call.
    ///   - threads: worker threads per call (default: the number of online processors).
    ///   - effort: FFTW planner effort (default ``FFT/defaultEffort``).
    /// - Throws: ``SSMError`` when the shape is invalid.
    public init(shape: ConvolutionShape, threads: Int? = nil, effort: FFTPlannerEffort? = nil) throws(SSMError) {
        try shape.validate()
        if let threads, threads < 1 {
            throw SSMError.option(name: "threads", expected: "a positive thread count, got \(threads)")
        }
        self.shape = shape
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        fftSize = shape.fftSize
        fft = FFT.plan(size: fftSize, as: T.self, effort: effort)
        spectrumStride = alignedStride(fftSize / 2 + 1, of: Complex<T>.self)
        realStride = alignedStride(fftSize, of: T.self)
        sharesKernelSpectra = shape.channels < self.threads
        kernelSpectra = AlignedBuffer(count: sharesKernelSpectra ? shape.kernelCopies * shape.channels * spectrumStride : 0)
        realScratch = AlignedBuffer(count: self.threads * 3 * realStride)
        complexScratch = AlignedBuffer(count: self.threads * (3 + 2 * shape.kernelCopies) * spectrumStride)
    }

    /// The scratch rows of `worker`. The buffers live as long as `self`, which every caller holds.
    @inlinable @inline(__always)
    func scratch(_ worker: Int) -> Scratch {
        Scratch(real: realScratch.base + worker * 3 * realStride, realStride: realStride,
                complex: complexScratch.base + worker * (3 + 2 * shape.kernelCopies) * spectrumStride,
                spectrumStride: spectrumStride, copies: shape.kernelCopies)
    }

    /// Runs `phase` over task indices `0 ..< count` on ``threads`` threads (the caller's
    /// ``arguments`` must be set), then clears the arguments.
    @inlinable
    func runParallel(_ phase: Phase, count: Int) {
        noteForBound(phase, count: count)
        self.phase = phase
        if task == nil {
            let target = TaskTarget(self)
            task = { index, worker in target.convolution.runTask(index, worker: worker) }
        }
        WorkerPool.shared.runTasks(count, workers: threads, task!)
    }

    /// Tells a running `OperationRecorder` the transform-only twin of `phase`.
    @usableFromInline
    func noteForBound(_ phase: Phase, count: Int) {
        // Outside a recording this is one relaxed atomic load: no closure, no retain.
        guard OperationRecorder.isRecording else { return }
        let bound: Phase? = switch phase {
        case .kernelSpectra: .boundKernelSpectra
        case .forwardRows: .boundForwardRows
        case .forwardChannels: .boundForwardChannels
        case .backwardChannels: .boundBackwardChannels
        default: nil
        }
        guard let bound else { return }
        // Held strongly: the layer may drop this instance before the recording is replayed.
        let target = RetainedConvolution(convolution: self)
        OperationRecorder.note(prepare: { target.convolution.prepareTransformsOnly() },
                               run: { target.convolution.runParallel(bound, count: count) })
    }

    /// One task of the current ``phase``.
    @inlinable
    func runTask(_ index: Int, worker: Int) {
        let s = scratch(worker)
        let a = arguments
        let (B, H, C) = (shape.batch, shape.channels, shape.kernelCopies)
        switch phase {
        case .kernelSpectra:
            kernelSpectrum(index, a.kernel!, a.skip, into: kernelSpectra.base + index * spectrumStride, s)
        case .forwardRows:
            let (h, b) = index.quotientAndRemainder(dividingBy: B)
            convolveRow(b, h, a.u!, a.y!, kernels: kernelSpectra.base + h * spectrumStride,
                        kernelStride: H * spectrumStride, s)
        case .forwardChannels:
            let h = index
            for c in 0 ..< C { kernelSpectrum(c * H + h, a.kernel!, a.skip, into: s.kernels + c * spectrumStride, s) }
            for b in 0 ..< B { convolveRow(b, h, a.u!, a.y!, kernels: s.kernels, kernelStride: spectrumStride, s) }
        case .backwardChannels:
            backwardChannel(index, s)
        case .boundKernelSpectra, .boundForwardRows, .boundForwardChannels, .boundBackwardChannels:
            boundTask(s)
        }
    }

    // MARK: forward

    /// y = k ∗ u + D·u (causal, or bidirectional per ``ConvolutionShape``). Overwrites `y`.
    ///
    /// With `geluDerivative`, each output row z goes through the exact GELU as it leaves the
    /// inverse transform, while it is in cache: y = GELU(z) and `geluDerivative` = GELU′(z)
    /// (same shape as y), the values a separate GELU pass over z would give, with no pass over
    /// z. ``backward(dY:u:kernel:skip:dU:dK:dD:outputDerivative:)`` takes that derivative back.
    ///
    /// - Parameters: `u: (B, H, L)`, `kernel: (C or 2, H, Lk)`, `skip: (C, H)` or nil,
    ///   `y: (B, C, H, L)`, `geluDerivative` nil or like y; pointers to at least that many elements.
    /// - Complexity: O((B + 1)·C·H·n log n) time on ``threads`` threads.
    @inlinable
    public func forward(u: UnsafePointer<T>, kernel: UnsafePointer<T>, skip: UnsafePointer<T>?,
                        y: UnsafeMutablePointer<T>, geluDerivative: UnsafeMutablePointer<T>? = nil) {
        arguments = Arguments()
        arguments.outputDerivative = geluDerivative
        arguments.u = UnsafeMutablePointer(mutating: u)
        arguments.kernel = UnsafeMutablePointer(mutating: kernel)
        arguments.skip = skip.map { UnsafeMutablePointer(mutating: $0) }
        arguments.y = y
        defer { arguments = Arguments() }
        let (B, H, C) = (shape.batch, shape.channels, shape.kernelCopies)
        if sharesKernelSpectra {
            runParallel(.kernelSpectra, count: C * H)
            runParallel(.forwardRows, count: B * H)
        } else {
            runParallel(.forwardChannels, count: H)
        }
    }

    /// y[b, :, h, :] from u[b, h, :] and the C kernel spectra at `kernels`, `kernelStride` apart:
    /// one forward transform and C inverse ones.
    @inlinable @inline(__always)
    func convolveRow(_ b: Int, _ h: Int, _ u: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>,
                     kernels: UnsafeMutablePointer<Complex<T>>, kernelStride: Int, _ s: Scratch) {
        let (H, L, C) = (shape.channels, shape.length, shape.kernelCopies)
        s.input.update(from: u + (b * H + h) * L, count: L)
        fft.forward(s.input, s.spectrum)
        for c in 0 ..< C {
            // The last copy may consume the input spectrum; earlier ones need it again, and c2r
            // destroys its input.
            let target: UnsafeMutablePointer<Complex<T>>
            if c == C - 1 {
                target = s.spectrum
                spectralMultiply(target, by: kernels + c * kernelStride, count: fft.spectrumCount)
            } else {
                target = s.product
                spectralMultiply(s.spectrum, kernels + c * kernelStride, into: target, count: fft.spectrumCount)
            }
            fft.inverse(target, s.output)
            let row = ((b * C + c) * H + h) * L
            if let derivative = arguments.outputDerivative {
                geluWithDerivative(s.output, y + row, derivative + row, count: L)
            } else {
                (y + row).update(from: s.output, count: L)
            }
        }
    }

    /// `out` = rfft(k[row] + D[row]·δ, n) / n for kernel row `row` = c·H + h. Bidirectional: the
    /// anti-causal half sits at the end of the circular buffer, reversed, so that tap
    /// k[1, h, j−1] lands at index n − j and multiplies u[t + j].
    @inlinable @inline(__always)
    func kernelSpectrum(_ row: Int, _ kernel: UnsafeMutablePointer<T>, _ skip: UnsafeMutablePointer<T>?,
                        into out: UnsafeMutablePointer<Complex<T>>, _ s: Scratch) {
        let (H, Lk, n) = (shape.channels, shape.kernelLength, fftSize)
        let scale = 1 / T(n)
        let real = s.kernelInput
        // Scaling the Lk taps costs less than scaling the n/2 + 1 spectrum values. Only the tap
        // positions are written, always the same ones, so the zeros between them persist.
        let taps = kernel + row * Lk
        for j in 0 ..< Lk { real[j] = taps[j] * scale }
        if shape.bidirectional {
            let backward = kernel + (H + row) * Lk
            for j in 1 ... Lk { real[n - j] = backward[j - 1] * scale }
        }
        if let skip { real[0] += skip[row] * scale }
        fft.forward(real, out)
    }

    /// Array form of ``forward(u:kernel:skip:y:geluDerivative:)`` that checks every count and value.
    /// - Throws: ``SSMError/shape(argument:expected:actual:)`` naming the first wrong argument;
    ///   ``SSMError/value(argument:expected:)`` for a NaN or infinity in `u`, `k` or `D`, or for
    ///   finite inputs whose convolution overflows `T` (|y| can reach Σ|k|·max|u|). After that
    ///   last error `y` holds the overflowed values.
    @inlinable
    public func forward(u: [T], kernel: [T], skip: [T]? = nil, y: inout [T]) throws(SSMError) {
        try checkInputs(u: u, kernel: kernel, skip: skip)
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
        guard allFinite(y) else {
            throw SSMError.value(argument: "u, k, D", expected: "inputs whose convolution is finite in \(T.self) (the output overflowed)")
        }
    }
}

// MARK: helpers shared by the convolution files

/// Throws unless `array` holds `count` values (and, with `finite`, finite ones), naming `name`
/// and its `shape`.
@usableFromInline
func check<T: FFTScalar>(_ array: [T], _ name: String, _ count: Int, _ shape: String, finite: Bool = false) throws(SSMError) {
    try checkValues(array, name, count, "\(shape) = \(count) elements", finite: finite)
}

extension FFTConvolution {
    /// The count and finiteness checks of `u`, `k` and `D` shared by the array forms.
    @inlinable
    func checkInputs(u: [T], kernel: [T], skip: [T]?) throws(SSMError) {
        try check(u, "u", shape.inputCount, "(B, H, L)", finite: true)
        try check(kernel, "k", shape.kernelCount, "(\(shape.bidirectional ? "2" : "C"), H, Lk)", finite: true)
        if let skip { try check(skip, "D", shape.skipCount, "(C, H)", finite: true) }
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
