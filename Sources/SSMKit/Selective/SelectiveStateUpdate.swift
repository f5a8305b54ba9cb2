/// One step of the selective scan for decoding: the official `selective_state_update`
/// (state-spaces/mamba) without heads. For each batch b and channel d:
///
///     dt = softplus(dt + dt_bias_d)        (when `deltaSoftplus`)
///     x ← exp(dt A_d) ⊙ x + dt · u · B,   out = (C · x + D_d u) · silu(z)
///
/// It is the scan of ``SelectiveScan`` at L = 1 from the given state, with the same operations
/// on every value (only the sum C · x may be added in another order), so stepping L tokens
/// reproduces the scan to rounding. One C loop runs all the rows: the per-row scalars (dt,
/// dt · u, the gate) of a block of channels first, vectorized over channels, then each row's N
/// states, at a fifth of the cost of a call per row at Mamba's sizes (E = 1536, N = 16).
/// Layouts: state (B, D, N); u, dt, z, out (B, D); A (D, N); B and C (B, G, N); D and dt_bias
/// (D). The state is updated in place; the array form allocates only a list of pointers, the
/// pointer form nothing.
public struct SelectiveStateUpdate<T: SelectiveScanScalar>: Sendable {
    public let shape: SelectiveScanShape
    public var deltaSoftplus: Bool

    /// `rowStride`: B and C are token-major rows of that stride (batch b's group g at
    /// b·rowStride + g·N, as in Mamba's x_proj output) for the in-place form; nil for the
    /// packed (B, G, N).
    /// - Throws: ``SSMError`` for a non-positive extent, a group count that does not divide D,
    ///   or a row stride below G·N.
    public init(batch: Int, channels: Int, state: Int, groups: Int = 1, rowStride: Int? = nil, deltaSoftplus: Bool = true) throws(SSMError) {
        let projection: SelectiveProjection = rowStride.map { .tokenMajor(groups: groups, stride: $0) } ?? .inputDependent(groups: groups)
        shape = try SelectiveScanShape(batch: batch, channels: channels, state: state, length: 1, b: projection, c: projection)
        self.deltaSoftplus = deltaSoftplus
    }

    /// The step on the caller's buffers, allocating nothing: `state` (B, D, N) advanced in
    /// place, out (B, D) written (it must not overlap the operands or the state);
    /// `x.initialState` is ignored. Returns false (state and out
    /// then hold garbage in the rows concerned) when a value is not finite: the caller's
    /// inputs are not checked first.
    ///
    /// `threads` > 1 splits the B·D rows over the worker pool when there are at least 512.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func callAsFunction(state: UnsafeMutablePointer<T>, _ x: SelectiveScanOperands<T>, out: UnsafeMutablePointer<T>,
                               threads: Int = 1) -> Bool {
        let step = rows(x, state: state, out: out)
        let rows = shape.sequenceCount
        let parts = rows >= 512 ? max(1, min(threads, rows / 256)) : 1
        if parts == 1 { return T.selectiveScanStep(step, rows: 0 ..< rows) }
        return withUnsafeTemporaryAllocation(of: Bool.self, capacity: parts) { finite in
            WorkerPool.forEachInParallel(parts, threads: parts, (step, finite.baseAddress!, rows, parts)) { context, part, _ in
                let (step, finite, rows, parts) = context
                finite[part] = T.selectiveScanStep(step, rows: rows * part / parts ..< rows * (part + 1) / parts)
            }
            return finite.allSatisfy { $0 }
        }
    }

    /// The C loop's view of the operands: B and C of batch b, group g at b·stride + g·N.
    func rows(_ x: SelectiveScanOperands<T>, state: UnsafeMutablePointer<T>, out: UnsafeMutablePointer<T>) -> SelectiveStepRows<T> {
        let (D, N) = (shape.channels, shape.state)
        // A time-invariant B is D groups of one channel each, the same for every batch.
        let (groups, stride) = switch shape.b {
        case let .tokenMajor(groups, stride): (groups, stride)
        case let .inputDependent(groups): (groups, groups * N)
        case .timeInvariant: (D, 0)
        }
        return SelectiveStepRows(channels: D, state: N, groups: groups, u: x.u, delta: x.delta, z: x.z, a: x.a, b: x.b, c: x.c,
                                 bcStride: stride, dSkip: x.d, deltaBias: x.deltaBias, softplus: deltaSoftplus, x: state, out: out)
    }

    /// Advances `state` by one step and writes out: (B, D).
    /// - Throws: ``SSMError`` for a wrong count or a non-finite value; `state` and `out` are
    ///   then unchanged.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func callAsFunction(state: inout [T], u: [T], dt: [T], a: [T], b: [T], c: [T], d: [T]? = nil,
                               z: [T]? = nil, dtBias: [T]? = nil, out: inout [T]) throws(SSMError) {
        let x = SelectiveScanInputs(u: u, delta: dt, a: a, b: b, c: c, d: d, z: z, deltaBias: dtBias)
        try shape.check(x)
        try checkValues(state, "state", shape.stateCount, "(B, D, N) = (\(shape.batch), \(shape.channels), \(shape.state))")
        try checkValues(out, "out", shape.sequenceCount, "(B, D) = (\(shape.batch), \(shape.channels))", finite: false)
        // Every input was checked above: the step cannot report one.
        withBaseAddresses([x.u, x.delta, x.a, x.b, x.c, x.d, x.z, x.deltaBias]) { p in
            state.withUnsafeMutableBufferPointer { state in
                out.withUnsafeMutableBufferPointer { out in
                    _ = self(state: state.baseAddress!, SelectiveScanOperands(u: p[0]!, delta: p[1]!, a: p[2]!, b: p[3]!, c: p[4]!, d: p[5],
                                                                              z: p[6], deltaBias: p[7]),
                             out: out.baseAddress!)
                }
            }
        }
    }
}
