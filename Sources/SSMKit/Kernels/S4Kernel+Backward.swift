import ComplexModule
import RealModule

extension S4Kernel {
    /// Gradients of ⟨dK, K̄⟩, accumulated (`+=`) into `dInvDt: (H)`, `dAReal, dAImag: (S, N2)`,
    /// `dB: c(S, N2)`, `dP: c(R, S, N2)`, `dC: c(C, H, N2)` (complex gradients as PyTorch's,
    /// d(re) + i·d(im)).
    ///
    /// The adjoint of irfft gives G_j = (c_j/L)·rfft(dK)_j (c_j = 2 except at j = 0 and the
    /// Nyquist node), so that the loss is Re Σ_j conj(G_j)·K̂_j. Through the Woodbury form, with
    /// x = (I + r_QP)⁻¹ r_QB and y = r_C̃P (I + r_QP)⁻¹, each Cauchy sum r_ab gets the node weight
    ///
    ///     e_C̃B = E,  e_C̃P = −E·x,  e_QB = −E·y,  e_QP = E·y xᵀ,   E = conj(G)·2/(1 + ω)
    ///
    /// and r_ab's terms v/(g − λ) + conj(v)/(g − conj λ), v = a·b, pass it to v, λ and, through
    /// g = (2/Δ)(1 − ω)/(1 + ω), to log Δ. All in Double.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(length L: Int, dK: [T], invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>],
                         cTilde: [Complex<T>], dInvDt: inout [T], dAReal: inout [T], dAImag: inout [T],
                         dB: inout [Complex<T>], dP: inout [Complex<T>], dC: inout [Complex<T>]) throws(SSMError) {
        try check(invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: cTilde)
        let (N2, R, H) = (modes, rank, channels)
        if dK.count != copies * H * L { throw SSMError.shape(argument: "d_k", expected: "(C, H, L)", actual: [dK.count]) }
        if dInvDt.count != H || dAReal.count != ssms * N2 || dAImag.count != ssms * N2 || dB.count != ssms * N2
            || dP.count != R * ssms * N2 || dC.count != copies * H * N2 {
            throw SSMError.shape(argument: "gradients", expected: "the shapes of their parameters", actual: [])
        }
        let fft = FFT.plan(size: L, as: T.self, effort: effort)
        // SSMs in parallel: a task is one SSM s and its channels h ≡ s (mod S), in the order a
        // serial loop takes them, so each gradient sums in the same order on any thread count.
        let workers = max(1, min(threads, ssms))
        let reals = (0 ..< workers).map { _ in AlignedBuffer<T>(count: alignedStride(L, of: T.self)) }
        let spectra = (0 ..< workers).map { _ in AlignedBuffer<Complex<T>>(count: alignedStride(L / 2 + 1, of: Complex<T>.self)) }
        let copies = self.copies, ssms = self.ssms
        dInvDt.withUnsafeMutableBufferPointer { dInvDtBuffer in
        dAReal.withUnsafeMutableBufferPointer { dARealBuffer in
        dAImag.withUnsafeMutableBufferPointer { dAImagBuffer in
        dB.withUnsafeMutableBufferPointer { dBBuffer in
        dP.withUnsafeMutableBufferPointer { dPBuffer in
        dC.withUnsafeMutableBufferPointer { dCBuffer in
        let (dInvDt, dAReal, dAImag) = (SendablePointer(dInvDtBuffer.baseAddress!), SendablePointer(dARealBuffer.baseAddress!),
                                        SendablePointer(dAImagBuffer.baseAddress!))
        let (dB, dP, dC) = (SendablePointer(dBBuffer.baseAddress!), SendablePointer(dPBuffer.baseAddress!), SendablePointer(dCBuffer.baseAddress!))
        WorkerPool.forEachInParallel(ssms, threads: workers) { s, worker in
        let (real, spectrumBuffer) = (reals[worker], spectra[worker])
        for c in 0 ..< copies {
            for h in stride(from: s, to: H, by: ssms) {
                // G_j = (c_j / L)·rfft(dK[c, h])_j; only real parts matter at j = 0 and Nyquist.
                for l in 0 ..< L { real.base[l] = dK[(c * H + h) * L + l] }
                fft.forward(real.base, spectrumBuffer.base)
                let gradK: [Complex<Double>] = (0 ... L / 2).map { j in
                    let z = complexDouble(spectrumBuffer.base[j])
                    let edge = j == 0 || 2 * j == L
                    return edge ? Complex(z.real / Double(L)) : z.multiplied(by: 2 / Double(L))
                }
                let delta = Double.exp(Double(invDt[h]))
                let lambda = (0 ..< N2).map { Complex(-Double.exp(Double(aReal[s * N2 + $0])), -Double(aImag[s * N2 + $0])) }
                let left: [[Complex<Double>]] = [(0 ..< N2).map { complexDouble(cTilde[(c * H + h) * N2 + $0]) }]
                    + (0 ..< R).map { r in (0 ..< N2).map { complexDouble(p[(r * ssms + s) * N2 + $0]).conjugate } }
                let right: [[Complex<Double>]] = [(0 ..< N2).map { complexDouble(b[s * N2 + $0]) }]
                    + (0 ..< R).map { r in (0 ..< N2).map { complexDouble(p[(r * ssms + s) * N2 + $0]) } }
                let zeroRow = [Complex<Double>](repeating: .zero, count: N2)
                // U[x][y][n] = Σ_j e_xy/(g − λ_n), V likewise with conj λ_n; X, Y for λ.
                var u = [[[Complex<Double>]]](repeating: [[Complex<Double>]](repeating: zeroRow, count: R + 1), count: R + 1)
                var v = u
                var xLambda = zeroRow, yLambda = zeroRow
                var gradInvDt = 0.0
                var gradLeft = [[Complex<Double>]](repeating: zeroRow, count: R + 1)
                var gradRight = gradLeft
                // Per-frequency scratch, made once per channel and overwritten at every j.
                var inv = zeroRow, invConj = zeroRow
                var r = [[Complex<Double>]](repeating: [Complex<Double>](repeating: .zero, count: R + 1), count: R + 1)
                var e = r
                var m = [[Complex<Double>]](repeating: [Complex<Double>](repeating: .zero, count: R), count: R)
                var mCopy = m, mT = m
                var xs = [Complex<Double>](repeating: .zero, count: R), ys = xs
                for j in 0 ... L / 2 {
                    if 2 * j == L {
                        // K̂ = Δ·Re Σ C̃_n B_n at ω = −1: loss Re(G)·K̂.
                        let gReal = gradK[j].real
                        let sum = (0 ..< N2).reduce(0) { $0 + (left[0][$1] * right[0][$1]).real }
                        gradInvDt += gReal * delta * sum
                        for n in 0 ..< N2 {
                            gradLeft[0][n] = gradLeft[0][n] + right[0][n].conjugate.multiplied(by: gReal * delta)
                            gradRight[0][n] = gradRight[0][n] + left[0][n].conjugate.multiplied(by: gReal * delta)
                        }
                        continue
                    }
                    let angle = -2 * Double.pi * Double(j) / Double(L)
                    let omega = Complex(Double.cos(angle), Double.sin(angle))
                    let g = (Complex(1) - omega) / (Complex(1) + omega) * Complex(2 / delta)
                    for n in 0 ..< N2 {
                        inv[n] = Complex(1) / (g - lambda[n])
                        invConj[n] = Complex(1) / (g - lambda[n].conjugate)
                    }
                    for x in 0 ... R {
                        for y in 0 ... R {
                            var sum = Complex<Double>.zero
                            for n in 0 ..< N2 {
                                let vn = left[x][n] * right[y][n]
                                sum = sum + vn * inv[n] + vn.conjugate * invConj[n]
                            }
                            r[x][y] = sum
                        }
                    }
                    for i in 0 ..< R {
                        for k in 0 ..< R { m[i][k] = r[1 + i][1 + k] + Complex(i == k ? 1 : 0) }
                        xs[i] = r[1 + i][0]
                        ys[i] = r[0][1 + i]
                    }
                    for i in 0 ..< R { for k in 0 ..< R { (mCopy[i][k], mT[i][k]) = (m[i][k], m[k][i]) } }
                    solveSmall(&mCopy, &xs)
                    // y = r_C̃P M⁻¹, i.e. Mᵀ yᵀ = r_C̃Pᵀ.
                    solveSmall(&mT, &ys)
                    let e0 = gradK[j].conjugate * (Complex(2) / (Complex(1) + omega))
                    e[0][0] = e0
                    for q in 0 ..< R {
                        e[0][1 + q] = -(e0 * xs[q])
                        e[1 + q][0] = -(e0 * ys[q])
                        for t in 0 ..< R { e[1 + q][1 + t] = e0 * ys[q] * xs[t] }
                    }
                    for x in 0 ... R {
                        for y in 0 ... R {
                            let exy = e[x][y]
                            var dg = Complex<Double>.zero
                            for n in 0 ..< N2 {
                                let vn = left[x][n] * right[y][n]
                                let i1 = inv[n], i2 = invConj[n]
                                u[x][y][n] = u[x][y][n] + exy * i1
                                v[x][y][n] = v[x][y][n] + exy * i2
                                xLambda[n] = xLambda[n] + exy * vn * i1 * i1
                                yLambda[n] = yLambda[n] + exy * vn.conjugate * i2 * i2
                                dg = dg + vn * i1 * i1 + vn.conjugate * i2 * i2
                            }
                            // ∂r/∂g = −Σ(…)², ∂g/∂invDt = −g.
                            gradInvDt += (exy * dg * g).real
                        }
                    }
                }
                // v = a·b: grad_v = conj(U) + V; grad_a += grad_v·conj(b), grad_b += grad_v·conj(a).
                for x in 0 ... R {
                    for y in 0 ... R {
                        for n in 0 ..< N2 {
                            let gv = u[x][y][n].conjugate + v[x][y][n]
                            gradLeft[x][n] = gradLeft[x][n] + gv * right[y][n].conjugate
                            gradRight[y][n] = gradRight[y][n] + gv * left[x][n].conjugate
                        }
                    }
                }
                dInvDt.pointer[h] += T(gradInvDt)
                for n in 0 ..< N2 {
                    let i = s * N2 + n
                    // λ = −exp(A_real) − i·A_imag.
                    let gradLambda = xLambda[n].conjugate + yLambda[n]
                    dAReal.pointer[i] += T(gradLambda.real * lambda[n].real)
                    dAImag.pointer[i] += T(-gradLambda.imaginary)
                    dC.pointer[(c * H + h) * N2 + n] = dC.pointer[(c * H + h) * N2 + n] + complexT(gradLeft[0][n], T.self)
                    dB.pointer[i] = dB.pointer[i] + complexT(gradRight[0][n], T.self)
                    for q in 0 ..< R {
                        // P plays b (P_q) and, conjugated, a (Q_q = conj P_q).
                        let gp = gradRight[1 + q][n] + gradLeft[1 + q][n].conjugate
                        dP.pointer[(q * ssms + s) * N2 + n] = dP.pointer[(q * ssms + s) * N2 + n] + complexT(gp, T.self)
                    }
                }
            }
        }
        }
        }}}}}}
    }
}
