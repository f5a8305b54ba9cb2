import ComplexModule

extension FFTConvolution {
    /// Gradients of ⟨dY, y⟩ for y = `forward(u:kernel:skip:y:)`, accumulated (`+=`) into
    /// whichever of `dU: (B, H, L)`, `dK: (C or 2, H, Lk)`, `dD: (C, H)` is non-nil.
    ///
    ///     dU[b,h]   = Σ_c correlation(dY[b,c,h], k[c,h] + D[c,h]·δ)   — one irfft per (b, h)
    ///     dK[c,h,j] = Σ_b Σ_t dY[b,c,h,t] · u[b,h,t−j]                — one irfft per (c, h)
    ///     dD[c,h]   = Σ_b Σ_t dY[b,c,h,t] · u[b,h,t]  (lag 0 of the same correlation)
    ///
    /// A task is one channel h: its kernel spectra (for dU) and its C accumulators of dK's
    /// spectra live in the worker's scratch, so no (B, H, n) intermediate exists and the batch
    /// is summed in a fixed order (results do not depend on the thread count).
    /// Transforms: C·H (kernel, for dU) + B·H·(C + 1) forward, B·H + C·H inverse.
    ///
    /// With `outputDerivative` (like dY: the GELU′ that `forward(…, geluDerivative:)` wrote),
    /// the gradient taken back is dY ⊙ `outputDerivative`, the product formed as each row is
    /// read into the transform: the gradients of ⟨dY, GELU(y)⟩. Without a skip there is no D:
    /// `dD` is then not written (the array form refuses it).
    @inlinable
    public func backward(dY: UnsafePointer<T>, u: UnsafePointer<T>, kernel: UnsafePointer<T>,
                         skip: UnsafePointer<T>?, dU: UnsafeMutablePointer<T>?,
                         dK: UnsafeMutablePointer<T>?, dD: UnsafeMutablePointer<T>?,
                         outputDerivative: UnsafePointer<T>? = nil) {
        arguments = Arguments()
        arguments.outputDerivative = outputDerivative.map { UnsafeMutablePointer(mutating: $0) }
        arguments.dY = UnsafeMutablePointer(mutating: dY)
        arguments.u = UnsafeMutablePointer(mutating: u)
        arguments.kernel = UnsafeMutablePointer(mutating: kernel)
        arguments.skip = skip.map { UnsafeMutablePointer(mutating: $0) }
        arguments.dU = dU
        arguments.dK = dK
        arguments.dD = skip == nil ? nil : dD
        defer { arguments = Arguments() }
        runParallel(.backwardChannels, count: shape.channels)
    }

    /// The backward task of channel h: dU[:, h], dK[:, h] and dD[:, h].
    @inlinable
    func backwardChannel(_ h: Int, _ s: Scratch) {
        let a = arguments
        let wantU = a.dU != nil
        let wantK = a.dK != nil || a.dD != nil
        let (B, H, L, C, Lk, n) = (shape.batch, shape.channels, shape.length, shape.kernelCopies,
                                   shape.kernelLength, fftSize)
        let count = fft.spectrumCount
        let scale = 1 / T(n)
        if wantU {
            for c in 0 ..< C { kernelSpectrum(c * H + h, a.kernel!, a.skip, into: s.kernels + c * spectrumStride, s) }
        }
        for b in 0 ..< B {
            if wantK {
                s.input.update(from: a.u! + (b * H + h) * L, count: L)
                fft.forward(s.input, s.spectrum)
            }
            for c in 0 ..< C {
                let row = ((b * C + c) * H + h) * L
                if let derivative = a.outputDerivative {
                    rowMultiply(a.dY! + row, derivative + row, into: s.input, count: L)
                } else {
                    s.input.update(from: a.dY! + row, count: L)
                }
                fft.forward(s.input, s.product)
                if wantU {
                    // The kernel spectra already carry 1/n.
                    spectralMultiplyConjugate(s.kernels + c * spectrumStride, s.product,
                                              into: s.dUSpectrum, count: count, accumulate: c > 0)
                }
                if wantK {
                    spectralMultiplyConjugate(s.spectrum, s.product, into: s.dKSpectra + c * spectrumStride,
                                              count: count, accumulate: b > 0)
                }
            }
            if let dU = a.dU {
                fft.inverse(s.dUSpectrum, s.output)
                rowAdd(s.output, into: dU + (b * H + h) * L, count: L)
            }
        }
        guard wantK else { return }
        for c in 0 ..< C {
            fft.inverse(s.dKSpectra + c * spectrumStride, s.output)
            if let dK = a.dK {
                rowAdd(s.output, into: dK + (c * H + h) * Lk, scale: scale, count: Lk)
                if shape.bidirectional {
                    let backward = dK + (H + h) * Lk
                    for j in 1 ... Lk { backward[j - 1] += s.output[n - j] * scale }
                }
            }
            if let dD = a.dD { dD[c * H + h] += s.output[0] * scale }
        }
    }

    /// Array form of ``backward(dY:u:kernel:skip:dU:dK:dD:outputDerivative:)``; checks every count and
    /// accumulates into the non-nil gradients.
    /// - Throws: ``SSMError/unexpected(argument:expected:)`` for `d_D` without a skip;
    ///   ``SSMError/shape(argument:expected:actual:)`` naming the first wrong argument;
    ///   ``SSMError/value(argument:expected:)`` for a NaN or infinity in `d_y`, `u`, `k` or `D`.
    @inlinable
    public func backward(dY: [T], u: [T], kernel: [T], skip: [T]? = nil,
                         dU: inout [T]?, dK: inout [T]?, dD: inout [T]?) throws(SSMError) {
        try check(dY, "d_y", shape.outputCount, "(B, C, H, L)", finite: true)
        try checkInputs(u: u, kernel: kernel, skip: skip)
        if let dU { try check(dU, "d_u", shape.inputCount, "(B, H, L)") }
        if let dK { try check(dK, "d_k", shape.kernelCount, "the shape of k") }
        if let dD {
            // Without a skip there is no D to differentiate: a buffer for its gradient would
            // come back unchanged, as if D's gradient were zero.
            guard skip != nil else { throw SSMError.unexpected(argument: "d_D", expected: "a gradient of D only when a skip D is given") }
            try check(dD, "d_D", shape.skipCount, "(C, H)")
        }
        dY.withUnsafeBufferPointer { dY in
        u.withUnsafeBufferPointer { u in
        kernel.withUnsafeBufferPointer { k in
        withOptionalPointer(skip) { d in
        withOptionalMutablePointer(&dU) { dU in
        withOptionalMutablePointer(&dK) { dK in
        withOptionalMutablePointer(&dD) { dD in
            backward(dY: dY.baseAddress!, u: u.baseAddress!, kernel: k.baseAddress!, skip: d,
                     dU: dU, dK: dK, dD: dD)
        }
        }
        }
        }
        }
        }
        }
    }
}
