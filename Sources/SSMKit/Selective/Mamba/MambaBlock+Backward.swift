extension MambaBlock {
    /// The backward pass of scan mode: the gradients of Σ dOut ⊙ out with respect to the
    /// hidden states (B, L, M) and every parameter (the state a prefill started from is held
    /// fixed). Walks `run` in reverse: out_proj, the scan (``SelectiveScan/backward(_:dOut:)``),
    /// dt_proj, x_proj, SiLU, the conv, in_proj; every GEMM's two gradients by GEMM.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(dOut: [T], activations act: Activations,
                         parameters p: MambaParameters<T>) throws(SSMError) -> (dHidden: [T], dParameters: MambaParameters<T>) {
        let c = configuration
        let (M, E, N, K, R) = (c.modelWidth, c.innerWidth, c.state, c.convWidth, c.dtRank)
        let (B, L) = (act.batch, act.length)
        let rows = B * L
        try p.check(c)
        try checkValues(dOut, "d_out", rows * M, "(B, L, M) = (\(B), \(L), \(M))")
        var g = MambaParameters<T>(zerosFor: c)

        // out_proj: out = y Wᵀ (+ b).
        var dYRows = [T](repeating: 0, count: rows * E)
        BLAS.matmul(dOut, p["out_proj.weight"], m: rows, n: E, k: M, into: &dYRows)
        BLAS.matmul(dOut, transposeA: true, act.yRows, m: M, n: E, k: rows, into: &g.values["out_proj.weight"]!)
        if c.projectionBias { g["out_proj.bias"] = columnSums(dOut, rows: rows, cols: M) }

        // The scan.
        let shape = try SelectiveScanShape(batch: B, channels: E, state: N, length: L)
        let scan = try SelectiveScan<T>(shape: shape, deltaSoftplus: true, threads: threads)
        let s = try scan.backward(act.scan, dOut: BLAS.transposed(dYRows, batch: B, rows: L, cols: E))
        g["A_log"] = zip(s.a, act.scan.a).map { $0 * $1 }  // A = −exp(A_log): ∂A/∂A_log = A
        g["D"] = s.d!
        g["dt_proj.bias"] = s.deltaBias!

        // dt_proj: dt = dt_r Wᵀ.
        let dDtRows = BLAS.transposed(s.delta, batch: B, rows: E, cols: L)
        var dDtLow = [T](repeating: 0, count: rows * R)
        BLAS.matmul(dDtRows, p["dt_proj.weight"], m: rows, n: R, k: E, into: &dDtLow)
        BLAS.matmul(dDtRows, transposeA: true, act.dtLow, m: E, n: R, k: rows, into: &g.values["dt_proj.weight"]!)

        // x_proj: [dt_r, B, C] = u Wᵀ.
        var dXDbl = [T](repeating: 0, count: rows * (R + 2 * N))
        for b in 0 ..< B {
            for t in 0 ..< L {
                let dst = (b * L + t) * (R + 2 * N)
                for j in 0 ..< R { dXDbl[dst + j] = dDtLow[(b * L + t) * R + j] }
                for n in 0 ..< N {
                    dXDbl[dst + R + n] = s.b[(b * N + n) * L + t]
                    dXDbl[dst + R + N + n] = s.c[(b * N + n) * L + t]
                }
            }
        }
        var dURows = [T](repeating: 0, count: rows * E)
        BLAS.matmul(dXDbl, p["x_proj.weight"], m: rows, n: E, k: R + 2 * N, into: &dURows)
        BLAS.matmul(dXDbl, transposeA: true, act.uRows, m: R + 2 * N, n: E, k: rows, into: &g.values["x_proj.weight"]!)

        // SiLU and the causal conv.
        let dUFromProj = BLAS.transposed(dURows, batch: B, rows: L, cols: E)
        var dPre = [T](repeating: 0, count: B * E * L)
        for i in dPre.indices { dPre[i] = (s.u[i] + dUFromProj[i]) * siluDerivative(act.preActivation[i]) }
        var dX = [T](repeating: 0, count: B * E * L)
        var dW = [T](repeating: 0, count: E * K), dConvBias = [T](repeating: 0, count: E)
        let w = p["conv1d.weight"]
        for row in 0 ..< B * E {
            let e = row % E
            for t in 0 ..< L {
                let d = dPre[row * L + t]
                dConvBias[e] += d
                for j in 0 ..< K {
                    let src = t - (K - 1) + j
                    let xs = src >= 0 ? act.x[row * L + src] : act.context[row * (K - 1) + (K - 1 + src)]
                    dW[e * K + j] += d * xs
                    if src >= 0 { dX[row * L + src] += d * w[e * K + j] }
                }
            }
        }
        g["conv1d.weight"] = dW
        if c.convBias { g["conv1d.bias"] = dConvBias }

        // in_proj: [x, z] = h Wᵀ (+ b).
        var dXZ = [T](repeating: 0, count: rows * 2 * E)
        let dz = s.z!
        for b in 0 ..< B {
            for t in 0 ..< L {
                let dst = (b * L + t) * 2 * E
                for e in 0 ..< E {
                    dXZ[dst + e] = dX[(b * E + e) * L + t]
                    dXZ[dst + E + e] = dz[(b * E + e) * L + t]
                }
            }
        }
        var dHidden = [T](repeating: 0, count: rows * M)
        BLAS.matmul(dXZ, p["in_proj.weight"], m: rows, n: M, k: 2 * E, into: &dHidden)
        BLAS.matmul(dXZ, transposeA: true, act.hidden, m: 2 * E, n: M, k: rows, into: &g.values["in_proj.weight"]!)
        if c.projectionBias { g["in_proj.bias"] = columnSums(dXZ, rows: rows, cols: 2 * E) }
        return (dHidden, g)
    }
}

/// The sums of each column of a row-major (rows × cols) matrix.
func columnSums<T: FFTScalar>(_ m: [T], rows: Int, cols: Int) -> [T] {
    var s = [T](repeating: 0, count: cols)
    for r in 0 ..< rows {
        for j in 0 ..< cols { s[j] += m[r * cols + j] }
    }
    return s
}
