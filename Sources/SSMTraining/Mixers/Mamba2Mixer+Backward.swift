import SSMKit

extension Mamba2Mixer {
    /// Adds the gradients of Σ dOut ⊙ out into dHidden (B, L, M) and every parameter's
    /// gradient, walking the forward pass in reverse: out_proj, the gated norm, the SSD scan
    /// (its gradients written where its operands live: d xBC and the dt columns of d in_proj),
    /// SiLU and the conv, in_proj.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(_ dOut: UnsafeBufferPointer<T>, input h: UnsafeBufferPointer<T>, parameters p: ParameterView<T>,
                         activations act: Activations, dInput: UnsafeMutableBufferPointer<T>, gradients g: GradientView<T>) throws(SSMError) {
        guard act.filled else { throw SSMError.value(argument: "activations", expected: "the activations of a forward pass") }
        guard act.trainable else { throw SSMError.value(argument: "activations", expected: "activations made by makeActivations (these are inference-only)") }
        let c = configuration
        let (B, L) = (act.batch, act.length)
        let (M, E, H, G, N, K) = (c.modelWidth, c.innerWidth, c.heads, c.groups, c.state, c.convWidth)
        let (C, W, rows) = (c.convChannels, c.projectionWidth, B * L)
        try checkSequence(dOut.count, "d_out", batch: B, length: L)
        try checkSequence(h.count, "hidden_states", batch: B, length: L)
        try checkSequence(dInput.count, "d_hidden_states", batch: B, length: L)
        let dOut = dOut.baseAddress!, h = h.baseAddress!, dH = dInput.baseAddress!

        // out_proj: out = n Wᵀ. dn = dOut W; dW += dOutᵀ n.
        BLAS.matmul(dOut, p[slots.outProj].baseAddress!, m: rows, n: E, k: M, into: act.dn.base, threads: threads)
        BLAS.matmul(dOut, transposeA: true, act.normed.base, m: M, n: E, k: rows, into: g[slots.outProj].baseAddress!, accumulate: true,
                    threads: threads)
        if let bias = slots.outProjBias { addColumnSums(dOut, rows: rows, cols: M, into: g[bias].baseAddress!) }

        // The gated norm: d norm.weight, then dy and dz (into d in_proj's z columns).
        act.dzx.zero()
        let gw = g[slots.normWeight].baseAddress!
        for r in 0 ..< rows {
            let dn = act.dn.base + r * E, gated = act.gated.base + r * E, inverse = act.inverseRMS.base + r * G
            let size = E / G
            for i in 0 ..< E { gw[i] += dn[i] * gated[i] * inverse[i / size] }
        }
        let norm = GatedNorm(y: act.y.base, z: act.zx.base, zStride: W, weight: p[slots.normWeight].baseAddress!, gated: act.gated.base,
                             normed: act.normed.base, inverseRMS: act.inverseRMS.base, width: E, groups: G, epsilon: T(c.normEpsilon))
        let (dn, dy, dz) = (SendableBox(UnsafePointer(act.dn.base)), SendableBox(act.dy.base), SendableBox(act.dzx.base))
        WorkerPool.forEachInParallel(rows, threads: rows >= 64 ? threads : 1, (norm, dn, dy, dz)) { context, row, _ in
            context.0.backward(row, dNormed: context.1.value, dy: context.2.value, dz: context.3.value)
        }

        // The SSD scan: dx, dB, dC into d xBC; d dt into d in_proj's dt columns; dA, dD, d dt_bias.
        act.dxbc.zero()
        act.dA.zero()
        let buffers = SSDGradientBuffers(x: act.dxbc.base, xStride: C, dt: act.dzx.base + 2 * E + 2 * G * N, dtStride: W, a: act.dA.base,
                                         b: act.dxbc.base + E, bStride: C, c: act.dxbc.base + E + G * N, cStride: C,
                                         d: g[slots.d].baseAddress!, dtBias: g[slots.dtBias].baseAddress!)
        do {
            try act.scan.backward(operands(act, p, ssmState: nil), dOut: act.dy.base, dOutStride: E, dFinalStates: nil, into: buffers,
                                  workspace: act.workspace)
        } catch {
            try checkFinite(dOut, rows * M, "d_out")
            throw error
        }
        // A = −exp(A_log): ∂A/∂A_log = A.
        let gALog = g[slots.aLog]
        for i in 0 ..< H { gALog[i] += act.dA.base[i] * act.a.base[i] }

        // SiLU and the conv: dpre = dxBC ⊙ silu′(pre); d input into d in_proj's xBC columns.
        for i in 0 ..< rows * C { act.dxbc.base[i] *= siluDerivative(act.pre.base[i]) }
        let conv = TokenConv(input: act.zx.base + E, inputStride: W, context: act.context.base, taps: act.taps.base, bias: nil,
                             pre: act.dxbc.base, out: act.dzx.base + E, channels: C, width: K, length: L)
        WorkerPool.forEachInParallel(B * conv.blocks, threads: threads, conv) { conv, task, _ in conv.backwardInput(task) }
        let gW = g[slots.convWeight].baseAddress!, gBias = slots.convBias.map { g[$0].baseAddress! }
        for b in 0 ..< B {
            for t in 0 ..< L {
                let d = act.dxbc.base + (b * L + t) * C
                for j in 0 ..< K {
                    let x = conv.row(b, t - (K - 1) + j)
                    for ch in 0 ..< C { gW[ch * K + j] += d[ch] * x[ch] }
                }
                if let gBias { for ch in 0 ..< C { gBias[ch] += d[ch] } }
            }
        }

        // in_proj: zx = h Wᵀ. dW += dzxᵀ h; dh += dzx W.
        BLAS.matmul(act.dzx.base, transposeA: true, h, m: W, n: M, k: rows, into: g[slots.inProj].baseAddress!, accumulate: true,
                    threads: threads)
        BLAS.matmul(act.dzx.base, p[slots.inProj].baseAddress!, m: rows, n: M, k: W, into: dH, accumulate: true, threads: threads)
        if let bias = slots.inProjBias { addColumnSums(act.dzx.base, rows: rows, cols: W, into: g[bias].baseAddress!) }
    }
}

extension TokenConv {
    /// The input gradient of one block of tokens: `pre` holds dpre on entry, and
    /// d in[s, ch] += Σ_j dpre[s + (K − 1) − j, ch]·w[ch, j] is added to `out` (at the input's
    /// stride), for the block's tokens s.
    @inline(__always)
    func backwardInput(_ task: Int) {
        let b = task / blocks, first = (task % blocks) * Self.blockLength
        let C = channels, K = width
        for s in first ..< Swift.min(length, first + Self.blockLength) {
            let d = out + (b * length + s) * inputStride
            for j in 0 ..< K where s + (K - 1) - j < length {
                let dp = pre + (b * length + s + (K - 1) - j) * C, w = taps + j * C
                for ch in 0 ..< C { d[ch] += dp[ch] * w[ch] }
            }
        }
    }
}
