import CSSMKitKernels
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
    /// g = (2/Δ)(1 − ω)/(1 + ω), to log Δ. All in Double; the loops over the modes run in C
    /// (`ssm_cauchy_adjoint_sums_f64` and `…_accumulate_f64`, CSSMKitKernels/cauchy_adjoint.c),
    /// vectorized over nodes or modes so that every sum keeps the order, and so the bits, of the
    /// plain Complex<Double> loop.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(length L: Int, dK: [T], invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>],
                         cTilde: [Complex<T>], dInvDt: inout [T], dAReal: inout [T], dAImag: inout [T],
                         dB: inout [Complex<T>], dP: inout [Complex<T>], dC: inout [Complex<T>],
                         workspace: S4KernelWorkspace<T>? = nil) throws(SSMError) {
        try check(invDt: invDt, aReal: aReal, aImag: aImag, b: b, p: p, cTilde: cTilde)
        let (N2, R, H) = (modes, rank, channels)
        if dK.count != copies * H * L { throw SSMError.shape(argument: "d_k", expected: "(C, H, L)", actual: [dK.count]) }
        try checkFinite(dK, "d_k")
        if dInvDt.count != H || dAReal.count != ssms * N2 || dAImag.count != ssms * N2 || dB.count != ssms * N2
            || dP.count != R * ssms * N2 || dC.count != copies * H * N2 {
            throw SSMError.shape(argument: "gradients", expected: "the shapes of their parameters", actual: [])
        }
        let w = try self.workspace(workspace, length: L)
        // SSMs in parallel: a task is one SSM s and its channels h ≡ s (mod S), in the order a
        // serial loop takes them, so each gradient sums in the same order on any thread count.
        let workers = max(1, min(threads, ssms))
        dK.withUnsafeBufferPointer { dK in
        dInvDt.withUnsafeMutableBufferPointer { dInvDt in
        dAReal.withUnsafeMutableBufferPointer { dAReal in
        dAImag.withUnsafeMutableBufferPointer { dAImag in
        dB.withUnsafeMutableBufferPointer { dB in
        dP.withUnsafeMutableBufferPointer { dP in
        dC.withUnsafeMutableBufferPointer { dC in
            let tasks = GradientTasks(kernel: self, workspace: w, length: L, dK: dK.baseAddress!, invDt: invDt, aReal: aReal, aImag: aImag,
                                      b: b, p: p, cTilde: cTilde, dInvDt: dInvDt.baseAddress!, dAReal: dAReal.baseAddress!,
                                      dAImag: dAImag.baseAddress!, dB: dB.baseAddress!, dP: dP.baseAddress!, dC: dC.baseAddress!)
            WorkerPool.forEachInParallel(ssms, threads: workers, tasks) { tasks, s, worker in tasks.run(s, worker: worker) }
        }
        }
        }
        }
        }
        }
        }
    }

    /// One SSM's channels per task.
    struct GradientTasks {
        let kernel: S4Kernel
        let workspace: S4KernelWorkspace<T>
        let length: Int
        let dK: UnsafePointer<T>
        let invDt: [T], aReal: [T], aImag: [T], b: [Complex<T>], p: [Complex<T>], cTilde: [Complex<T>]
        let dInvDt, dAReal, dAImag: UnsafeMutablePointer<T>
        let dB, dP, dC: UnsafeMutablePointer<Complex<T>>

        func run(_ s: Int, worker: Int) {
            let (L, N2, R, H, ssms) = (length, kernel.modes, kernel.rank, kernel.channels, kernel.ssms)
            let (rows, pairs) = (R + 1, (R + 1) * (R + 1))
            let real = workspace.real.base + worker * workspace.realStride
            let spectrum = workspace.spectra.base + worker * workspace.spectrumStride
            let w = BackwardScratch(kernel, length: L, workspace.worker(worker))
            for c in 0 ..< kernel.copies {
                for h in stride(from: s, to: H, by: ssms) {
                    channel(c, h, s, w, real: real, spectrum: spectrum, L: L, N2: N2, R: R, rows: rows, pairs: pairs)
                }
            }
        }

        /// The gradients of copy c, channel h (of SSM s), added to the outputs.
        func channel(_ c: Int, _ h: Int, _ s: Int, _ w: BackwardScratch, real: UnsafeMutablePointer<T>, spectrum: UnsafeMutablePointer<Complex<T>>,
                     L: Int, N2: Int, R: Int, rows: Int, pairs: Int) {
            let (H, ssms) = (kernel.channels, kernel.ssms)
            // G_j = (c_j / L)·rfft(dK[c, h])_j; only real parts matter at j = 0 and Nyquist.
            for l in 0 ..< L { real[l] = dK[(c * H + h) * L + l] }
            workspace.fft.forward(real, spectrum)
            for j in 0 ... L / 2 {
                let z = complexDouble(spectrum[j])
                let edge = j == 0 || 2 * j == L
                w.gradK[j] = edge ? Complex(z.real / Double(L)) : z.multiplied(by: 2 / Double(L))
            }
            let delta = Double.exp(Double(invDt[h]))
            for n in 0 ..< N2 { w.lambda[n] = Complex(-Double.exp(Double(aReal[s * N2 + n])), -Double(aImag[s * N2 + n])) }
            // Row 0 of left is C̃, rows 1 … R are Q_r = conj P_r; row 0 of right is B, 1 … R are P_r.
            for n in 0 ..< N2 {
                w.left[n] = complexDouble(cTilde[(c * H + h) * N2 + n])
                w.right[n] = complexDouble(b[s * N2 + n])
            }
            for r in 0 ..< R {
                for n in 0 ..< N2 {
                    w.left[(1 + r) * N2 + n] = complexDouble(p[(r * ssms + s) * N2 + n]).conjugate
                    w.right[(1 + r) * N2 + n] = complexDouble(p[(r * ssms + s) * N2 + n])
                }
            }
            // The Cauchy sums r_xy and their g-derivatives dg_xy at every node but ω = −1, in C
            // (the split parts are the raw ones: `real` would turn an infinity into NaN).
            let nodes = L % 2 == 0 ? L / 2 : L / 2 + 1
            let stride = w.stride
            for n in 0 ..< N2 { (w.lambdaRe[n], w.lambdaIm[n]) = w.lambda[n].rawStorage }
            for x in 0 ... R {
                for y in 0 ... R {
                    let row = (x * rows + y) * stride
                    for n in 0 ..< N2 {
                        let vn = w.left[x * N2 + n] * w.right[y * N2 + n]
                        (w.vRe[row + n], w.vIm[row + n]) = vn.rawStorage
                    }
                    for n in N2 ..< stride { (w.vRe[row + n], w.vIm[row + n]) = (0, 0) }
                }
            }
            for j in 0 ..< nodes {
                let omega = workspace.omegas[j]
                let g = (Complex(1) - omega) / (Complex(1) + omega) * Complex(2 / delta)
                (w.gRe[j], w.gIm[j]) = g.rawStorage
            }
            ssm_cauchy_adjoint_sums_f64(nodes, w.gRe, w.gIm, N2, stride, w.lambdaRe, w.lambdaIm, pairs, w.vRe, w.vIm, w.invRe, w.invIm,
                                        w.invConjRe, w.invConjIm, w.rRe, w.rIm, w.dgRe, w.dgIm, w.work)
            // Per node: the Woodbury solves give each sum's weight e_xy; ∂r/∂g = −dg and
            // ∂g/∂invDt = −g give invDt's share.
            var gradInvDt = 0.0
            for j in 0 ..< nodes {
                let omega = workspace.omegas[j]
                let g = Complex(w.gRe[j], w.gIm[j])
                let r = { (i: Int) in Complex(w.rRe[j * pairs + i], w.rIm[j * pairs + i]) }
                for i in 0 ..< R {
                    for k in 0 ..< R { w.m[i * R + k] = r((1 + i) * rows + 1 + k) + Complex(i == k ? 1 : 0) }
                    w.xs[i] = r((1 + i) * rows)
                    w.ys[i] = r(1 + i)
                }
                for i in 0 ..< R { for k in 0 ..< R { (w.mCopy[i * R + k], w.mT[i * R + k]) = (w.m[i * R + k], w.m[k * R + i]) } }
                solveSmall(w.mCopy, w.xs, R)
                // y = r_C̃P M⁻¹, i.e. Mᵀ yᵀ = r_C̃Pᵀ.
                solveSmall(w.mT, w.ys, R)
                let e0 = w.gradK[j].conjugate * (Complex(2) / (Complex(1) + omega))
                w.e[0] = e0
                for q in 0 ..< R {
                    w.e[1 + q] = -(e0 * w.xs[q])
                    w.e[(1 + q) * rows] = -(e0 * w.ys[q])
                    for t in 0 ..< R { w.e[(1 + q) * rows + 1 + t] = e0 * w.ys[q] * w.xs[t] }
                }
                for i in 0 ..< pairs {
                    let exy = w.e[i]
                    (w.eRe[j * pairs + i], w.eIm[j * pairs + i]) = exy.rawStorage
                    gradInvDt += (exy * Complex(w.dgRe[j * pairs + i], w.dgIm[j * pairs + i]) * g).real
                }
            }
            for i in 0 ..< rows * N2 { (w.gradLeft[i], w.gradRight[i]) = (.zero, .zero) }
            if L % 2 == 0 {
                // K̂ = Δ·Re Σ C̃_n B_n at ω = −1: loss Re(G)·K̂.
                let gReal = w.gradK[L / 2].real
                var sum = 0.0
                for n in 0 ..< N2 { sum += (w.left[n] * w.right[n]).real }
                gradInvDt += gReal * delta * sum
                for n in 0 ..< N2 {
                    w.gradLeft[n] = w.gradLeft[n] + w.right[n].conjugate.multiplied(by: gReal * delta)
                    w.gradRight[n] = w.gradRight[n] + w.left[n].conjugate.multiplied(by: gReal * delta)
                }
            }
            // U[x][y][n] = Σ_j e_xy/(g − λ_n), V (w) likewise with conj λ_n; X, Y for λ.
            ssm_cauchy_adjoint_accumulate_f64(nodes, stride, pairs, w.eRe, w.eIm, w.vRe, w.vIm, w.invRe, w.invIm, w.invConjRe, w.invConjIm,
                                              w.uRe, w.uIm, w.wRe, w.wIm, w.xLambdaRe, w.xLambdaIm, w.yLambdaRe, w.yLambdaIm)
            // v = a·b: grad_v = conj(U) + V; grad_a += grad_v·conj(b), grad_b += grad_v·conj(a).
            for x in 0 ... R {
                for y in 0 ... R {
                    let row = (x * rows + y) * stride
                    for n in 0 ..< N2 {
                        let gv = Complex(w.uRe[row + n], w.uIm[row + n]).conjugate + Complex(w.wRe[row + n], w.wIm[row + n])
                        w.gradLeft[x * N2 + n] = w.gradLeft[x * N2 + n] + gv * w.right[y * N2 + n].conjugate
                        w.gradRight[y * N2 + n] = w.gradRight[y * N2 + n] + gv * w.left[x * N2 + n].conjugate
                    }
                }
            }
            dInvDt[h] += T(gradInvDt)
            for n in 0 ..< N2 {
                let i = s * N2 + n
                // λ = −exp(A_real) − i·A_imag.
                let gradLambda = Complex(w.xLambdaRe[n], w.xLambdaIm[n]).conjugate + Complex(w.yLambdaRe[n], w.yLambdaIm[n])
                dAReal[i] += T(gradLambda.real * w.lambda[n].real)
                dAImag[i] += T(-gradLambda.imaginary)
                dC[(c * H + h) * N2 + n] = dC[(c * H + h) * N2 + n] + complexT(w.gradLeft[n], T.self)
                dB[i] = dB[i] + complexT(w.gradRight[n], T.self)
                for q in 0 ..< R {
                    // P plays b (P_q) and, conjugated, a (Q_q = conj P_q).
                    let gp = w.gradRight[(1 + q) * N2 + n] + w.gradLeft[(1 + q) * N2 + n].conjugate
                    dP[(q * ssms + s) * N2 + n] = dP[(q * ssms + s) * N2 + n] + complexT(gp, T.self)
                }
            }
        }
    }
}
