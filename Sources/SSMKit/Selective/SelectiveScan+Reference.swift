extension SelectiveScan {
    /// The plain loop of the official `selective_scan_ref`, with libm's exp and log1p: the
    /// definition the fast path is tested against. Same inputs and outputs as ``forward(_:)``.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func reference(_ x: SelectiveScanInputs<T>) throws(SSMError) -> (out: [T], lastState: [T]) {
        try shape.check(x)
        let s = shape
        let (D, L, N) = (s.channels, s.length, s.state)
        var out = [T](repeating: 0, count: s.sequenceCount)
        var last = [T](repeating: 0, count: s.stateCount)
        for b in 0 ..< s.batch {
            for d in 0 ..< D {
                let row = b * D + d
                var state = (0 ..< N).map { x.initialState?[row * N + $0] ?? 0 }
                for t in 0 ..< L {
                    var dt = x.delta[row * L + t] + (x.deltaBias?[d] ?? 0)
                    if deltaSoftplus { dt = softplus(dt) }
                    let u = x.u[row * L + t]
                    var y: T = 0
                    for n in 0 ..< N {
                        let bn = projection(x.b, s.b, b, d, n, t), cn = projection(x.c, s.c, b, d, n, t)
                        state[n] = T.exp(dt * x.a[d * N + n]) * state[n] + dt * bn * u
                        y += cn * state[n]
                    }
                    y += (x.d?[d] ?? 0) * u
                    if let z = x.z { y *= silu(z[row * L + t]) }
                    out[row * L + t] = y
                }
                for n in 0 ..< N { last[row * N + n] = state[n] }
            }
        }
        return (out, last)
    }

    /// B or C at (batch b, channel d, state n, step t) in its given layout.
    private func projection(_ values: [T], _ p: SelectiveProjection, _ b: Int, _ d: Int, _ n: Int, _ t: Int) -> T {
        let (N, L) = (shape.state, shape.length)
        switch p {
        case .timeInvariant: return values[d * N + n]
        case let .inputDependent(groups): return values[((b * groups + shape.group(d, p)) * N + n) * L + t]
        case let .tokenMajor(_, stride): return values[(b * L + t) * stride + shape.group(d, p) * N + n]
        }
    }
}

