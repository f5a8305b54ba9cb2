import SSMKit

extension MambaMixer {
    /// Adds the gradients of Σ dOut ⊙ out into dHidden (B, L, M) and every parameter's
    /// gradient, walking the forward pass in reverse: out_proj, the scan, dt_proj, x_proj,
    /// SiLU and the conv, in_proj. Each projection's two gradients are GEMMs per sequence in
    /// the layouts forward left (no transposes); weight gradients add the sequences in order.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(_ dOut: UnsafeBufferPointer<T>, input h: UnsafeBufferPointer<T>, parameters p: ParameterView<T>,
                         activations act: Activations, dInput: UnsafeMutableBufferPointer<T>, gradients g: GradientView<T>) throws(SSMError) {
        guard act.filled else { throw SSMError.value(argument: "activations", expected: "the activations of a forward pass") }
        guard act.trainable else { throw SSMError.value(argument: "activations", expected: "activations made by makeActivations (these are inference-only)") }
        let c = configuration
        let (B, L) = (act.batch, act.length)
        let (M, E, N, K, R) = (c.modelWidth, c.innerWidth, c.state, c.convWidth, c.dtRank)
        let S = R + 2 * N
        try checkSequence(dOut.count, "d_out", batch: B, length: L)
        try checkSequence(h.count, "hidden_states", batch: B, length: L)
        try checkSequence(dInput.count, "d_hidden_states", batch: B, length: L)
        let dOut = dOut.baseAddress!, h = h.baseAddress!, dH = dInput.baseAddress!

        // out_proj: out_b = y_bᵀ Wᵀ (+ bias). dY_b (E, L) = Wᵀ dOut_bᵀ; dW += dOut_bᵀ y_bᵀ.
        let wOut = p[slots.outProj].baseAddress!
        BLAS.matmul(batch: B, wOut, strideA: 0, transposeA: true, dOut, strideB: L * M, transposeB: true, m: E, n: L, k: M,
                    into: act.dY.base, strideC: E * L, threads: threads)
        let gOut = g[slots.outProj].baseAddress!
        for b in 0 ..< B {
            BLAS.matmul(dOut + b * L * M, transposeA: true, act.y.base + b * E * L, transposeB: true, m: M, n: E, k: L,
                        into: gOut, accumulate: true, threads: threads)
        }
        if let bias = slots.outProjBias { addColumnSums(dOut, rows: B * L, cols: M, into: g[bias].baseAddress!) }

        // The scan: du, dΔ, dz overwritten; dB and dC into dx_proj's columns; dD and d dt_bias
        // straight into the gradients; dA into scratch.
        act.dXDbl.zero()
        act.dA.zero()
        let operands = SelectiveScanOperands<T>(
            u: act.u.base, delta: act.delta.base, a: act.a.base, b: act.xDbl.base + R, c: act.xDbl.base + R + N, d: p[slots.d].baseAddress!,
            z: act.z.base, deltaBias: p[slots.dtProjBias].baseAddress!)
        let scanGradients = SelectiveScanGradientBuffers<T>(
            u: act.du.base, delta: act.dDelta.base, z: act.dz.base, a: act.dA.base, b: act.dXDbl.base + R, c: act.dXDbl.base + R + N,
            d: g[slots.d].baseAddress!, deltaBias: g[slots.dtProjBias].baseAddress!)
        do {
            try act.scan.backward(operands, dOut: act.dY.base, into: scanGradients, workspace: act.workspace)
        } catch {
            try checkFinite(dOut, B * L * M, "d_out")
            throw error
        }
        // A = −exp(A_log): ∂A/∂A_log = A.
        let gALog = g[slots.aLog]
        for i in 0 ..< gALog.count { gALog[i] += act.dA.base[i] * act.a.base[i] }

        // dt_proj: Δ_b = W dt_r_bᵀ. dW += dΔ_b dt_r_b; d dt_r_b (L, R) = dΔ_bᵀ W, into dx_proj's first R columns.
        let gDt = g[slots.dtProjWeight].baseAddress!
        for b in 0 ..< B {
            BLAS.matmul(act.dDelta.base + b * E * L, act.xDbl.base + b * L * S, m: E, n: R, k: L, into: gDt, accumulate: true,
                        ldb: S, threads: threads)
        }
        BLAS.matmul(batch: B, act.dDelta.base, strideA: E * L, transposeA: true, p[slots.dtProjWeight].baseAddress!, strideB: 0,
                    m: L, n: R, k: E, into: act.dXDbl.base, strideC: L * S, ldc: S, threads: threads)

        // x_proj: xDbl_b = u_bᵀ Wᵀ. dW += dxDbl_bᵀ u_bᵀ; du_b += Wᵀ dxDbl_bᵀ.
        let wX = p[slots.xProj].baseAddress!, gX = g[slots.xProj].baseAddress!
        for b in 0 ..< B {
            BLAS.matmul(act.dXDbl.base + b * L * S, transposeA: true, act.u.base + b * E * L, transposeB: true, m: S, n: E, k: L,
                        into: gX, accumulate: true, threads: threads)
        }
        BLAS.matmul(batch: B, wX, strideA: 0, transposeA: true, act.dXDbl.base, strideB: L * S, transposeB: true, m: E, n: L, k: S,
                    into: act.du.base, strideC: E * L, accumulate: true, threads: threads)

        // SiLU and the conv: dpre = du ⊙ silu′(pre) (in du), then dx into dY's buffer (free
        // since the scan), dW and d bias per channel.
        let dX = act.dY
        WorkerPool.forEachInParallel(B * E, threads: threads, ConvRows(
            x: act.x.base, context: act.context.base, weight: p[slots.convWeight].baseAddress!, bias: nil, pre: act.pre.base,
            u: act.du.base, inner: E, width: K, length: L)) { rows, row, _ in
            rows.backwardInput(row, into: dX.base)
        }
        // dW[e, j] += Σ_(b, t) dpre·x_shifted and d bias[e] += Σ_(b, t) dpre: channels in parallel,
        // each summing its sequences in order.
        WorkerPool.forEachInParallel(E, threads: threads, (ConvRows(
            x: act.x.base, context: act.context.base, weight: p[slots.convWeight].baseAddress!, bias: nil, pre: act.pre.base,
            u: act.du.base, inner: E, width: K, length: L), B, SendableBox(g[slots.convWeight].baseAddress!),
            slots.convBias.map { SendableBox(g[$0].baseAddress!) })) { context, e, _ in
            let (rows, B, gW, gBias) = context
            rows.backwardWeights(channel: e, batch: B, dWeight: gW.value, dBias: gBias?.value)
        }

        // in_proj: [x_b; z_b] = W h_bᵀ. dW[half] += d_half_b h_b; dh_b += d_half_bᵀ W[half].
        let wIn = p[slots.inProj].baseAddress!, gIn = g[slots.inProj].baseAddress!
        for half in 0 ..< 2 {
            let d = half == 0 ? dX : act.dz
            for b in 0 ..< B {
                BLAS.matmul(d.base + b * E * L, h + b * L * M, m: E, n: M, k: L, into: gIn + half * E * M, accumulate: true, threads: threads)
            }
            BLAS.matmul(batch: B, d.base, strideA: E * L, transposeA: true, wIn + half * E * M, strideB: 0, m: L, n: M, k: E,
                        into: dH, strideC: L * M, accumulate: true, threads: threads)
            if let bias = slots.inProjBias {
                let gBias = g[bias].baseAddress! + half * E
                for b in 0 ..< B {
                    for e in 0 ..< E {
                        var sum: T = 0
                        for t in 0 ..< L { sum += d.base[(b * E + e) * L + t] }
                        gBias[e] += sum
                    }
                }
            }
        }
    }
}

extension ConvRows {
    /// The backward pass of one row into its input: du holds dU on entry and dpre =
    /// dU ⊙ silu′(pre) on return; dx[s] = Σ_j dpre[s + (K − 1) − j]·w[e, j].
    func backwardInput(_ row: Int, into dX: UnsafeMutablePointer<T>) {
        let (e, K, L) = (row % inner, width, length)
        let w = weight + e * K
        let d = u + row * L, pre = self.pre + row * L, dx = dX + row * L
        multiplySiluDerivative(d, pre, scratch: dx, count: L)  // dx is free until the sums below
        // dx[s] = Σ_j dpre[s + (K − 1) − j]·w[j] over the taps in range, one tap at a time over
        // all positions (each position's sum in the order of j, contiguous, so it vectorizes).
        dx.update(repeating: 0, count: L)
        for j in 0 ..< K where L - (K - 1) + j > 0 {
            let wj = w[j], shifted = d + (K - 1 - j)
            for s in 0 ..< L - (K - 1) + j { dx[s] += shifted[s] * wj }
        }
    }
}

extension ConvRows {
    /// dW[e, j] += Σ_b Σ_t dpre_b[t]·x_b[t − (K − 1) + j] and dBias[e] += Σ_b Σ_t dpre_b[t] for
    /// channel e, dpre in `u`: each sequence's sum over t in order, added to the total in the
    /// order of b. Four taps (and the bias) are summed in one pass over t, so that their
    /// dependency chains overlap.
    func backwardWeights(channel e: Int, batch B: Int, dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>?) {
        let (K, L) = (width, length)
        for j0 in stride(from: 0, to: K, by: 4) {
            // Taps past K repeat the last one; their sums are dropped.
            let (j1, j2, j3) = (min(j0 + 1, K - 1), min(j0 + 2, K - 1), min(j0 + 3, K - 1))
            var (s0, s1, s2, s3, sb) = (dWeight[e * K + j0], dWeight[e * K + j1], dWeight[e * K + j2], dWeight[e * K + j3], dBias?[e] ?? 0)
            for b in 0 ..< B {
                let row = b * inner + e
                let d = u + row * L, xs = x + row * L
                let head = min(K - 1, L)
                var (p0, p1, p2, p3, pb): (T, T, T, T, T) = (0, 0, 0, 0, 0)
                for t in 0 ..< head {
                    let dt = d[t]
                    p0 += dt * input(row, t - (K - 1) + j0)
                    p1 += dt * input(row, t - (K - 1) + j1)
                    p2 += dt * input(row, t - (K - 1) + j2)
                    p3 += dt * input(row, t - (K - 1) + j3)
                    pb += dt
                }
                let (x0, x1, x2, x3) = (xs + (j0 - (K - 1)), xs + (j1 - (K - 1)), xs + (j2 - (K - 1)), xs + (j3 - (K - 1)))
                for t in head ..< L {
                    let dt = d[t]
                    p0 += dt * x0[t]
                    p1 += dt * x1[t]
                    p2 += dt * x2[t]
                    p3 += dt * x3[t]
                    pb += dt
                }
                (s0, s1, s2, s3, sb) = (s0 + p0, s1 + p1, s2 + p2, s3 + p3, sb + pb)
            }
            dWeight[e * K + j0] = s0
            if j0 + 1 < K { dWeight[e * K + j1] = s1 }
            if j0 + 2 < K { dWeight[e * K + j2] = s2 }
            if j0 + 3 < K { dWeight[e * K + j3] = s3 }
            if j0 == 0, let dBias { dBias[e] = sb }
        }
    }
}

/// Adds the column sums of a row-major (rows × cols) matrix into `sums`.
func addColumnSums<T: FFTScalar>(_ m: UnsafePointer<T>, rows: Int, cols: Int, into sums: UnsafeMutablePointer<T>) {
    for r in 0 ..< rows {
        for j in 0 ..< cols { sums[j] += m[r * cols + j] }
    }
}
