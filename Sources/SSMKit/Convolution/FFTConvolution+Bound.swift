extension FFTConvolution {
    /// Which pass of the convolution a bound run mirrors.
    public enum Pass: String, Sendable, CaseIterable {
        case forward
        case backward
    }

    /// Runs exactly the FFTW transforms that `forward(u:kernel:skip:y:)` (or
    /// `backward(dY:u:kernel:skip:dU:dK:dD:)` with every gradient requested) executes, with the
    /// same plans, arrays, thread count and task schedule, and nothing else: no copies, no
    /// padding, no spectral products. Its time is the bound of the performance model (Design and Mathematics, "The performance model");
    /// the convolution's time divided by it is the overhead SSMKit adds to FFTW.
    ///
    /// Works on this instance's scratch, which ``prepareTransformsOnly()`` must have zeroed
    /// since the convolution last used it (so that no denormals distort the timing). Zeroing is
    /// kept out of this call because it is not part of the bound: with few channels, a memset
    /// of every worker's scratch inside the timed call made the bound slower than the
    /// convolution itself.
    @inlinable
    public func runTransformsOnly(_ pass: Pass) {
        let (B, H, C) = (shape.batch, shape.channels, shape.kernelCopies)
        switch pass {
        case .forward where sharesKernelSpectra:
            runParallel(.boundKernelSpectra, count: C * H)
            runParallel(.boundForwardRows, count: B * H)
        case .forward:
            runParallel(.boundForwardChannels, count: H)
        case .backward:
            runParallel(.boundBackwardChannels, count: H)
        }
    }

    /// Zeroes the scratch for ``runTransformsOnly(_:)`` (untimed set-up).
    public func prepareTransformsOnly() {
        realScratch.base.update(repeating: 0, count: realScratch.count)
        complexScratch.base.update(repeating: .zero, count: complexScratch.count)
    }

    /// One task of a bound phase: the transforms of the matching convolution task.
    @inlinable
    func boundTask(_ s: Scratch) {
        let (B, C) = (shape.batch, shape.kernelCopies)
        switch phase {
        case .boundKernelSpectra:
            fft.forward(s.kernelInput, s.kernels)
        case .boundForwardRows:
            fft.forward(s.input, s.spectrum)
            for c in 0 ..< C { fft.inverse(c == C - 1 ? s.spectrum : s.product, s.output) }
        case .boundForwardChannels:
            for c in 0 ..< C { fft.forward(s.kernelInput, s.kernels + c * spectrumStride) }
            for _ in 0 ..< B {
                fft.forward(s.input, s.spectrum)
                for c in 0 ..< C { fft.inverse(c == C - 1 ? s.spectrum : s.product, s.output) }
            }
        case .boundBackwardChannels:
            for c in 0 ..< C { fft.forward(s.kernelInput, s.kernels + c * spectrumStride) }
            for _ in 0 ..< B {
                fft.forward(s.input, s.spectrum)
                for _ in 0 ..< C { fft.forward(s.input, s.product) }
                fft.inverse(s.dUSpectrum, s.output)
            }
            for c in 0 ..< C { fft.inverse(s.dKSpectra + c * spectrumStride, s.output) }
        default:
            preconditionFailure("boundTask: \(phase) is not a bound phase")
        }
    }
}
