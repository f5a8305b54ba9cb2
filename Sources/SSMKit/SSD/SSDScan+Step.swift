extension SSDScan {
    /// One token per sequence through the recurrence, advancing `states` (B, H, P, N) in place:
    /// S ← e^{dt′ A_h} S + dt′ x Bᵀ, y = S C + D ⊙ x (the official `Mamba2.step`). The
    /// operands hold one token per sequence (token b at b·stride, `initialStates` ignored);
    /// y goes to out (sequence b at b·`outStride`). dt′ is clamped as in the chunked scan (the
    /// official steps skip `dt_limit`; with the default limits the two agree), so step mode and
    /// scan mode compute the same recurrence. Sequences and heads run in parallel when the
    /// state is large. Returns whether the new states and y are finite.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func step(states: UnsafeMutablePointer<T>, _ x: SSDOperands<T>, out: UnsafeMutablePointer<T>, outStride: Int) -> Bool {
        let s = shape
        let rows = s.batch * s.heads
        let work = s.stateCount
        let context = StepContext(scan: self, states: states, x: x, out: out, outStride: outStride)
        if work >= 1 << 15, threads > 1 {
            WorkerPool.forEachInParallel(rows, threads: threads, context) { c, row, _ in c.run(row) }
        } else {
            for row in 0 ..< rows { context.run(row) }
        }
        var finite = allFinite(states, work)
        for b in 0 ..< s.batch { finite = finite && allFinite(out + b * outStride, s.heads * s.headDimension) }
        return finite
    }
}

/// One (sequence, head) row of a step.
struct StepContext<T: FFTScalar> {
    let scan: SSDScan<T>
    let states: UnsafeMutablePointer<T>
    let x: SSDOperands<T>
    let out: UnsafeMutablePointer<T>
    let outStride: Int

    @inline(__always)
    func run(_ row: Int) {
        let s = scan.shape
        let (H, P, N) = (s.heads, s.headDimension, s.state)
        let b = row / H, h = row % H, g = h / s.headsPerGroup
        let dt = scan.processed(x.dt[b * x.dtStride + h] + (x.dtBias?[h] ?? 0))
        let decay = T.exp(dt * x.a[h])
        let bv = x.b + b * x.bStride + g * N, cv = x.c + b * x.cStride + g * N
        let xv = x.x + b * x.xStride + h * P
        let state = states + row * P * N
        let y = out + b * outStride + h * P
        for p in 0 ..< P {
            let sp = state + p * N
            let input = dt * xv[p]
            var sum: T = 0
            for n in 0 ..< N {
                let v = decay * sp[n] + input * bv[n]
                sp[n] = v
                sum += v * cv[n]
            }
            let d = x.d.map { x.dHasHeadDimension ? $0[h * P + p] : $0[h] } ?? 0
            y[p] = sum + d * xv[p]
        }
    }
}
