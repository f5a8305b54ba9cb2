extension FFTConvolution {
    /// Which pass of the convolution a bound run mirrors.
    public enum Pass: String, Sendable, CaseIterable {
        case forward
        case backward
    }

    /// Runs exactly the FFTW transforms that ``forward(u:kernel:skip:y:)`` (or
    /// ``backward(dY:u:kernel:skip:dU:dK:dD:)`` with every gradient requested) executes, with the
    /// same plans, arrays, thread count and row scheduling, and nothing else: no copies, no
    /// padding, no spectral products. Its time is the bound of DESIGN.md's performance model;
    /// the convolution's time divided by it is the overhead SSMKit adds to FFTW.
    ///
    /// Works on this instance's scratch (kept at zero, so no denormals distort the timing).
    public func runTransformsOnly(_ pass: Pass) {
        let (B, H, C) = (shape.batch, shape.channels, shape.kernelCopies)
        realScratch.withPointer { $0.update(repeating: 0, count: realScratch.count) }
        complexScratch.withPointer { $0.update(repeating: .zero, count: complexScratch.count) }
        kernelSpectra.withPointer { spectra in
        realScratch.withPointer { realBase in
        complexScratch.withPointer { complexBase in
            let spectraShared = SharedPointer(spectra)
            // Kernel spectra: one forward transform per (c, h), in both passes.
            parallelRows(C * H, workers: threads, claim: claim) { row, worker in
                fft.forward(realBase + worker * realStride, spectraShared.base + row * spectrumStride)
            }
            switch pass {
            case .forward:
                parallelRows(B * H, workers: threads, claim: claim) { _, worker in
                    let real = realBase + worker * realStride
                    let uf = complexBase + worker * complexRowsPerWorker * spectrumStride
                    fft.forward(real, uf)
                    for c in 0 ..< C { fft.inverse(c == C - 1 ? uf : uf + spectrumStride, real) }
                }
            case .backward:
                parallelRows(H, workers: threads, claim: claim) { _, worker in
                    let real = realBase + worker * realStride
                    let uf = complexBase + worker * complexRowsPerWorker * spectrumStride
                    let dyf = uf + spectrumStride
                    for _ in 0 ..< B {
                        fft.forward(real, uf)
                        for _ in 0 ..< C { fft.forward(real, dyf) }
                        fft.inverse(dyf + spectrumStride, real)
                    }
                    for c in 0 ..< C { fft.inverse(dyf + (2 + c) * spectrumStride, real) }
                }
            }
        }
        }
        }
    }

    /// The number of (forward, inverse) real transforms of size n one pass executes.
    public func transformCount(_ pass: Pass) -> (forward: Int, inverse: Int) {
        let (B, H, C) = (shape.batch, shape.channels, shape.kernelCopies)
        switch pass {
        case .forward: return (C * H + B * H, B * C * H)
        case .backward: return (C * H + B * H * (1 + C), B * H + C * H)
        }
    }
}
