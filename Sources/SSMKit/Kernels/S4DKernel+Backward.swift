import ComplexModule
import RealModule

extension S4DKernel {
    /// Gradients of ⟨dK, K̄⟩, accumulated (`+=`) into `dLogDt: (H)`, `dC: c(H, N2)`,
    /// `dLogAReal: (H, N2)`, `dAImag: (H, N2)` and, when `b` is given, `dB: c(H, N2)`.
    /// Complex gradients are PyTorch's: d(re) + i·d(im).
    ///
    /// With w = C·B·β and K̄[l] = 2·Re Σ_n w Ā^l, the two Vandermonde sums per mode
    ///
    ///     G  = Σ_l dK[l] Ā^l,    G' = Σ_{l≥1} dK[l]·l·Ā^{l−1}
    ///
    /// give ∂/∂w = G and ∂/∂Ā = w·G' (holomorphic derivatives of the loss); the chain rule
    /// through `DiscreteMode` turns them into ∂/∂λ and ∂/∂Δ, and a real-valued gradient of a
    /// complex parameter p is 2·conj(∂/∂p). Cost: twice the forward's Vandermonde work, in the
    /// forward's sixteen-lane form (`vandermondeAdjoint(dK:length:mode:)`), channels in parallel.
    @inlinable
    public func backward(length L: Int, dK: [T], logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T],
                         b: [Complex<T>]? = nil, dLogDt: inout [T], dC: inout [Complex<T>],
                         dLogAReal: inout [T], dAImag: inout [T], dB: inout [Complex<T>]?) throws(SSMError) {
        try check(logDt: logDt, c: c, logAReal: logAReal, aImag: aImag, b: b)
        let (H, N2) = (channels, modes)
        guard L >= 1 else { throw SSMError.value(argument: "length", expected: "L ≥ 1, got \(L)") }
        if dK.count != H * L { throw SSMError.shape(argument: "d_k", expected: "(H, L) = (\(H), \(L))", actual: [dK.count]) }
        try checkFinite(dK, "d_k")
        if dLogDt.count != H { throw SSMError.shape(argument: "d_log_dt", expected: "(H)", actual: [dLogDt.count]) }
        if dC.count != H * N2 { throw SSMError.shape(argument: "d_C", expected: "(H, N2) complex", actual: [dC.count]) }
        if dLogAReal.count != H * N2 { throw SSMError.shape(argument: "d_log_A_real", expected: "(H, N2)", actual: [dLogAReal.count]) }
        if dAImag.count != H * N2 { throw SSMError.shape(argument: "d_A_imag", expected: "(H, N2)", actual: [dAImag.count]) }
        if b != nil, dB?.count != H * N2 { throw SSMError.shape(argument: "d_B", expected: "(H, N2) complex", actual: [dB?.count ?? 0]) }
        // Channels in parallel: each task writes only its own channel's gradients.
        dK.withUnsafeBufferPointer { dKBuffer in
        dLogDt.withUnsafeMutableBufferPointer { dLogDt in
        dC.withUnsafeMutableBufferPointer { dC in
        dLogAReal.withUnsafeMutableBufferPointer { dLogAReal in
        dAImag.withUnsafeMutableBufferPointer { dAImag in
        withOptionalMutablePointer(&dB) { dB in
            WorkerPool.forEachInParallel(H, threads: threads, GradientRows(
                kernel: self, length: L, dK: dKBuffer.baseAddress!, logDt: logDt, c: c, logAReal: logAReal, aImag: aImag, b: b,
                dLogDt: dLogDt.baseAddress!, dC: dC.baseAddress!, dLogAReal: dLogAReal.baseAddress!, dAImag: dAImag.baseAddress!, dB: dB)) {
                rows, h, _ in rows.run(h)
            }
        }
        }
        }
        }
        }
        }
    }

    /// One channel's gradients per task.
    @usableFromInline
    struct GradientRows {
        @usableFromInline let kernel: S4DKernel
        @usableFromInline let length: Int
        @usableFromInline let dK: UnsafePointer<T>
        @usableFromInline let logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], b: [Complex<T>]?
        @usableFromInline let dLogDt: UnsafeMutablePointer<T>, dC: UnsafeMutablePointer<Complex<T>>
        @usableFromInline let dLogAReal: UnsafeMutablePointer<T>, dAImag: UnsafeMutablePointer<T>
        @usableFromInline let dB: UnsafeMutablePointer<Complex<T>>?

        @inlinable
        init(kernel: S4DKernel, length: Int, dK: UnsafePointer<T>, logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], b: [Complex<T>]?,
             dLogDt: UnsafeMutablePointer<T>, dC: UnsafeMutablePointer<Complex<T>>, dLogAReal: UnsafeMutablePointer<T>,
             dAImag: UnsafeMutablePointer<T>, dB: UnsafeMutablePointer<Complex<T>>?) {
            (self.kernel, self.length, self.dK, self.logDt, self.c, self.logAReal, self.aImag, self.b) = (kernel, length, dK, logDt, c, logAReal, aImag, b)
            (self.dLogDt, self.dC, self.dLogAReal, self.dAImag, self.dB) = (dLogDt, dC, dLogAReal, dAImag, dB)
        }

        @inlinable
        func run(_ h: Int) {
            let (L, N2) = (length, kernel.modes)
            var dDelta = 0.0
            for n in 0 ..< N2 {
                let i = h * N2 + n
                let (_, lambda, m) = kernel.mode(h, n, logDt: logDt, logAReal: logAReal, aImag: aImag)
                let (g, gPrime) = kernel.vandermondeAdjoint(dK: dK + h * L, length: L, mode: m)
                let cb = complexDouble(c[i]), bb = complexDouble(b?[i] ?? Complex(1))
                let w = cb * bb * m.bBarScale
                let dW = g                      // ∂/∂w
                let dABar = w * gPrime          // ∂/∂Ā
                // ∂/∂λ and ∂/∂Δ through β(λ, Δ) and Ā(λ, Δ).
                let dBeta = dW * cb * bb
                let dLambda = dBeta * m.dBetaDLambda + dABar * m.dABarDLambda
                dDelta += 2 * (dBeta * m.dBetaDDelta + dABar * m.dABarDDelta).real
                // λ = −exp(logAReal) + i·aImag: ∂Re λ/∂logAReal = Re λ, ∂Im λ/∂aImag = 1.
                dLogAReal[i] += T(2 * dLambda.real * lambda.real)
                dAImag[i] += T(-2 * dLambda.imaginary)
                dC[i] = dC[i] + complexT((dW * bb * m.bBarScale).conjugate.multiplied(by: 2), T.self)
                if b != nil, let dB { dB[i] = dB[i] + complexT((dW * cb * m.bBarScale).conjugate.multiplied(by: 2), T.self) }
            }
            // Δ = exp(logDt): ∂Δ/∂logDt = Δ.
            dLogDt[h] += T(dDelta * Double.exp(Double(logDt[h])))
        }
    }

    /// G = Σ_l dK[l]·Ā^l and G' = Σ_{l ≥ 0} dK[l+1]·(l+1)·Ā^l for one mode, in the forward's
    /// scheme (``accumulateVandermonde(_:length:weight:mode:)``): the two sums accumulate per
    /// lane in T, and each block's lane sums are added in Double.
    @inlinable
    func vandermondeAdjoint(dK: UnsafePointer<T>, length L: Int, mode m: DiscreteMode<Double>) -> (Complex<Double>, Complex<Double>) {
        SSMKit.vandermondeAdjoint(dK, length: L, z: m.aBar, logZ: m.logABar, interval: anchorInterval)
    }
}
