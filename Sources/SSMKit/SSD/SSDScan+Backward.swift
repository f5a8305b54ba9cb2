extension SSDScan {
    /// Adds the gradients of Σ dOut ⊙ out + Σ dFinalStates ⊙ final_states to `g`, for the
    /// forward pass that filled `workspace` with the same operands. Allocates nothing.
    ///
    /// Three phases: per (batch, head), the state gradients from the last chunk back to the
    /// first (∂/∂S_in of chunk c is e^{Λ_last} times that of its successor plus what its
    /// inter-chunk output contributes, (e^Λ ⊙ dY)ᵀ C); per (batch, group, chunk), every
    /// other gradient of the chunk, C Bᵀ's summed over the group's heads before its two GEMMs;
    /// then the per-chunk sums of dA, dD and d dt_bias added in a fixed order.
    /// - Throws: ``SSMError`` for a workspace of another scan or not filled by forward, or
    ///   non-finite gradients (dOut or dFinalStates is not finite).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(_ x: SSDOperands<T>, dOut: UnsafePointer<T>, dOutStride: Int, dFinalStates: UnsafePointer<T>?,
                         into g: SSDGradientBuffers<T>, workspace ws: SSDWorkspace<T>) throws(SSMError) {
        try backwardChunks(x, dOut: dOut, dOutStride: dOutStride, dFinalStates: dFinalStates, into: g, workspace: ws)
    }

    /// The body of the in-place backward, for callers within the module.
    @inline(__always)
    func backwardChunks(_ x: SSDOperands<T>, dOut: UnsafePointer<T>, dOutStride: Int, dFinalStates: UnsafePointer<T>?,
                        into g: SSDGradientBuffers<T>, workspace ws: SSDWorkspace<T>) throws(SSMError) {
        try checkWorkspace(ws, backward: true)
        guard ws.filled else { throw SSMError.value(argument: "workspace", expected: "the workspace of a forward pass") }
        if x.d != nil, g.d == nil { throw SSMError.missing(argument: "d_D", expected: "a gradient buffer for D") }
        if x.dtBias != nil, g.dtBias == nil { throw SSMError.missing(argument: "d_dt_bias", expected: "a gradient buffer for dt_bias") }
        let s = shape
        let (B, G, H, P) = (s.batch, s.groups, s.heads, s.headDimension)
        let chunks = self.chunks
        let context = BackwardContext(scan: self, x: x, dOut: dOut, dOutStride: dOutStride, dFinal: dFinalStates, g: g, ws: ws)
        WorkerPool.forEachInParallel(B * H, threads: threads, context) { c, row, worker in c.statePhase(row, worker: worker) }
        WorkerPool.forEachInParallel(B * G * chunks, threads: threads, context) { c, task, worker in c.chunkPhase(task, worker: worker) }
        // The per-chunk partial sums, in a fixed order (batch, then chunk).
        let dPerChannel = x.dHasHeadDimension
        for h in 0 ..< H {
            var sumA: T = 0, sumBias: T = 0
            for b in 0 ..< B {
                for c in 0 ..< chunks {
                    let i = (b * H + h) * chunks + c
                    sumA += ws.partialA[i]
                    sumBias += ws.partialBias[i]
                }
            }
            g.a[h] += sumA
            g.dtBias?[h] += sumBias
            if let gd = g.d {
                for p in 0 ..< P {
                    var sum: T = 0
                    for b in 0 ..< B {
                        for c in 0 ..< chunks { sum += ws.partialD[((b * H + h) * chunks + c) * P + p] }
                    }
                    if dPerChannel { gd[h * P + p] += sum } else { gd[h] += sum }
                }
            }
        }
        if let gi = g.initialStates {
            let count = P * s.state
            for b in 0 ..< B {
                for h in 0 ..< H {
                    let first = ws.slot(ws.stateGradients, b, h, 0, chunks: chunks), target = gi + (b * H + h) * count
                    for i in 0 ..< count { target[i] += first[i] }
                }
            }
        }
        guard allFinite(g.a, H) else {
            throw SSMError.value(argument: "d_out, d_final_states", expected: "finite values (the gradients are not finite)")
        }
    }
}

/// What the backward phases read.
struct BackwardContext<T: FFTScalar> {
    let scan: SSDScan<T>
    let x: SSDOperands<T>
    let dOut: UnsafePointer<T>
    let dOutStride: Int
    let dFinal: UnsafePointer<T>?
    let g: SSDGradientBuffers<T>
    let ws: SSDWorkspace<T>

    /// Per (batch, head), chunks last to first: slot c + 1 of the state gradients becomes
    /// ∂/∂(state after chunk c), slot 0 ∂/∂(initial state); ∂/∂e^{Λ_last} of each chunk.
    @inline(__always)
    func statePhase(_ row: Int, worker: Int) {
        let s = scan.shape
        let (L, H, P, N, Q) = (s.length, s.heads, s.headDimension, s.state, scan.chunkLength)
        let chunks = scan.chunks
        let b = row / H, h = row % H, grp = h / s.headsPerGroup
        let count = P * N
        let last = ws.slot(ws.stateGradients, b, h, chunks, chunks: chunks)
        if let dFinal { last.update(from: dFinal + row * count, count: count) } else { last.update(repeating: 0, count: count) }
        let edy = ws.dXt[worker], e = ws.v1[worker]
        for c in stride(from: chunks - 1, through: 0, by: -1) {
            let t0 = c * Q, q = scan.tokens(c)
            let lambda = ws.cumulative + row * L + t0
            let after = ws.slot(ws.stateGradients, b, h, c + 1, chunks: chunks)
            let sIn = ws.slot(ws.states, b, h, c, chunks: chunks)
            var dAlpha: T = 0
            for i in 0 ..< count { dAlpha += after[i] * sIn[i] }
            ws.decayGradients[row * chunks + c] = dAlpha
            guard c > 0 || x.initialStates != nil else { continue }
            // ∂/∂S_in = (e^Λ ⊙ dY)ᵀ C + e^{Λ_last} ∂/∂S_out.
            T.vectorExp(lambda, e, q)
            let dy = dOut + (b * L + t0) * dOutStride + h * P
            for t in 0 ..< q {
                scale(e[t], dy + t * dOutStride, edy + t * P, P)
            }
            let before = ws.slot(ws.stateGradients, b, h, c, chunks: chunks)
            T.gemm(transposeA: true, transposeB: false, m: P, n: N, k: q, alpha: 1, a: edy, lda: P,
                   b: x.c + (b * L + t0) * x.cStride + grp * N, ldb: x.cStride, beta: 0, c: before, ldc: N)
            let alpha = T.exp(lambda[q - 1])
            for i in 0 ..< count { before[i] += alpha * after[i] }
        }
    }

    /// Per (batch, group, chunk): for each head of the group, the gradients of the intra-chunk
    /// product, the inter-chunk output and the chunk's own state with respect to X̃, C, B and Λ,
    /// then x, dt (through dt′) and the partial sums of A, D and dt_bias; finally C Bᵀ's.
    @inline(__always)
    func chunkPhase(_ task: Int, worker: Int) {
        let s = scan.shape
        let (L, H, P, G, N, Q) = (s.length, s.heads, s.headDimension, s.groups, s.state, scan.chunkLength)
        let chunks = scan.chunks
        let c = task % chunks, grp = (task / chunks) % G, b = task / (chunks * G)
        let t0 = c * Q, q = scan.tokens(c)
        let cb = ws.cb[worker], decay = ws.decay[worker], masked = ws.masked[worker]
        let dCB = ws.dCB[worker], dM = ws.dMasked[worker], xt = ws.xt[worker], dXt = ws.dXt[worker]
        let wide1 = ws.wide1[worker], wide2 = ws.wide2[worker]
        let dLambda = ws.v1[worker]
        let bm = x.b + (b * L + t0) * x.bStride + grp * N, cm = x.c + (b * L + t0) * x.cStride + grp * N
        let gb = g.b + (b * L + t0) * g.bStride + grp * N, gc = g.c + (b * L + t0) * g.cStride + grp * N
        T.gemm(transposeA: false, transposeB: true, m: q, n: q, k: N, alpha: 1, a: cm, lda: x.cStride, b: bm, ldb: x.bStride,
               beta: 0, c: cb, ldc: q)
        dCB.update(repeating: 0, count: q * q)
        for h in grp * s.headsPerGroup ..< (grp + 1) * s.headsPerGroup {
            let row = b * H + h
            let dt = ws.dt + row * L + t0, lambda = ws.cumulative + row * L + t0
            let a = x.a[h]
            // maskedDecay uses v2 and v3; dLambda (v1) is set after it.
            scan.maskedDecay(lambda, q: q, cb: cb, decay: decay, masked: masked, worker: worker, ws: ws)
            let xh = x.x + (b * L + t0) * x.xStride + h * P
            for t in 0 ..< q {
                scale(dt[t], xh + t * x.xStride, xt + t * P, P)
            }
            let dy = dOut + (b * L + t0) * dOutStride + h * P
            for t in 0 ..< q { dLambda[t] = 0 }
            // Intra-chunk: Y = M X̃, M = C Bᵀ ⊙ 𝓛. dX̃ = Mᵀ dY, dM = dY X̃ᵀ.
            T.gemm(transposeA: true, transposeB: false, m: q, n: P, k: q, alpha: 1, a: masked, lda: q, b: dy, ldb: dOutStride,
                   beta: 0, c: dXt, ldc: P)
            T.gemm(transposeA: false, transposeB: true, m: q, n: q, k: P, alpha: 1, a: dy, lda: dOutStride, b: xt, ldb: P,
                   beta: 0, c: dM, ldc: q)
            for t in 0 ..< q {
                let dmRow = dM + t * q, mRow = masked + t * q, lRow = decay + t * q, gRow = dCB + t * q
                var rowSum: T = 0
                for s in 0 ... t {
                    let v = dmRow[s] * mRow[s]
                    rowSum += v
                    dLambda[s] -= v
                    gRow[s] += dmRow[s] * lRow[s]
                }
                dLambda[t] += rowSum
            }
            // Inter-chunk output: y += e^Λ ⊙ (C S_inᵀ). Z = dY S_in: dC += e^Λ ⊙ Z, dΛ += e^Λ (Z · C).
            let e = ws.v2[worker]
            T.vectorExp(lambda, e, q)
            if c > 0 || x.initialStates != nil {
                let sIn = ws.slot(ws.states, b, h, c, chunks: chunks)
                T.gemm(transposeA: false, transposeB: false, m: q, n: N, k: P, alpha: 1, a: dy, lda: dOutStride, b: sIn, ldb: N,
                       beta: 0, c: wide1, ldc: N)
                for t in 0 ..< q {
                    var dot: T = 0
                    for n in 0 ..< N {
                        let z = wide1[t * N + n]
                        dot += z * cm[t * x.cStride + n]
                        gc[t * g.cStride + n] += e[t] * z
                    }
                    dLambda[t] += e[t] * dot
                }
            }
            // The chunk's own state: S_out += X̃ᵀ (w ⊙ B), w = e^{Λ_last − Λ}; ∂/∂S_out = gOut.
            let gOut = ws.slot(ws.stateGradients, b, h, c + 1, chunks: chunks)
            let w = ws.v3[worker]
            for t in 0 ..< q { w[t] = lambda[q - 1] - lambda[t] }
            T.vectorExp(w, w, q)
            for t in 0 ..< q {
                scale(w[t], bm + t * x.bStride, wide1 + t * N, N)
            }
            // dX̃ += (w ⊙ B) gOutᵀ; U = X̃ gOut: dB += w ⊙ U, dw = U · B.
            T.gemm(transposeA: false, transposeB: true, m: q, n: P, k: N, alpha: 1, a: wide1, lda: N, b: gOut, ldb: N,
                   beta: 1, c: dXt, ldc: P)
            T.gemm(transposeA: false, transposeB: false, m: q, n: N, k: P, alpha: 1, a: xt, lda: P, b: gOut, ldb: N,
                   beta: 0, c: wide2, ldc: N)
            var dLast = ws.decayGradients[row * chunks + c] * T.exp(lambda[q - 1])
            for t in 0 ..< q {
                var dot: T = 0
                for n in 0 ..< N {
                    let u = wide2[t * N + n]
                    dot += u * bm[t * x.bStride + n]
                    gb[t * g.bStride + n] += w[t] * u
                }
                let v = dot * w[t]
                dLast += v
                dLambda[t] -= v
            }
            dLambda[q - 1] += dLast
            // D, X̃ = dt′ ⊙ x, then Λ = cumsum(dt′ A) and dt′ = f(dt + bias).
            let gx = g.x + (b * L + t0) * g.xStride + h * P
            let partialD = ws.partialD + (row * chunks + c) * P
            for p in 0 ..< P { partialD[p] = 0 }
            var suffix: T = 0, sumA: T = 0, sumBias: T = 0
            for t in stride(from: q - 1, through: 0, by: -1) {
                var dDt: T = 0
                for p in 0 ..< P {
                    let xv = xh[t * x.xStride + p], dyv = dy[t * dOutStride + p]
                    let dv = x.d.map { x.dHasHeadDimension ? $0[h * P + p] : $0[h] } ?? 0
                    partialD[p] += dyv * xv
                    gx[t * g.xStride + p] += dv * dyv + dt[t] * dXt[t * P + p]
                    dDt += xv * dXt[t * P + p]
                }
                suffix += dLambda[t]
                dDt += suffix * a
                sumA += suffix * dt[t]
                let raw = x.dt[(b * L + t0 + t) * x.dtStride + h] + (x.dtBias?[h] ?? 0)
                let dRaw = dDt * scan.processedDerivative(raw)
                g.dt[(b * L + t0 + t) * g.dtStride + h] += dRaw
                sumBias += dRaw
            }
            ws.partialA[row * chunks + c] = sumA
            ws.partialBias[row * chunks + c] = sumBias
        }
        // C Bᵀ: dC += dCB B, dB += dCBᵀ C (dCB is zero above the diagonal).
        T.gemm(transposeA: false, transposeB: false, m: q, n: N, k: q, alpha: 1, a: dCB, lda: q, b: bm, ldb: x.bStride,
               beta: 1, c: gc, ldc: g.cStride)
        T.gemm(transposeA: true, transposeB: false, m: q, n: N, k: q, alpha: 1, a: dCB, lda: q, b: cm, ldb: x.cStride,
               beta: 1, c: gb, ldc: g.bStride)
    }
}
