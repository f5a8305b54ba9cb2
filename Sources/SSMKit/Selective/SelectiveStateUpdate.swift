/// One step of the selective scan for decoding: the official `selective_state_update`
/// (state-spaces/mamba) without heads. For each batch b and channel d:
///
///     dt = softplus(dt + dt_bias_d)        (when `deltaSoftplus`)
///     x ← exp(dt A_d) ⊙ x + dt · u · B,   out = (C · x + D_d u) · silu(z)
///
/// It is the scan of ``SelectiveScan`` at L = 1 from the given state, run by the same C row
/// loop, so stepping L tokens reproduces the scan to rounding. Layouts: state (B, D, N);
/// u, dt, z, out (B, D); A (D, N); B and C (B, G, N); D and dt_bias (D). The state is updated
/// in place; a call allocates only a few pointer lists, nothing that grows with the shapes.
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
    /// place, out (B, D) written; `x.initialState` is ignored. Returns false (state and out
    /// then hold garbage in the rows concerned) when a value is not finite: the caller's
    /// inputs are not checked first.
    ///
    /// `threads` > 1 splits the B·D rows over the worker pool when there are at least 512.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func callAsFunction(state: UnsafeMutablePointer<T>, _ x: SelectiveScanOperands<T>, out: UnsafeMutablePointer<T>,
                               threads: Int = 1) -> Bool {
        var x = x
        x.initialState = UnsafePointer(state)
        let inputs = RowInputs(x, shape: shape, softplus: deltaSoftplus)
        let rows = shape.sequenceCount
        let parts = rows >= 512 ? max(1, min(threads, rows / 256)) : 1
        if parts == 1 { return Self.step(inputs, rows: 0 ..< rows, state: state, out: out) }
        return withUnsafeTemporaryAllocation(of: Bool.self, capacity: parts) { finite in
            WorkerPool.forEachInParallel(parts, threads: parts, (inputs, SendableBox(state), SendableBox(out), finite.baseAddress!, rows, parts)) {
                context, part, _ in
                let (inputs, state, out, finite, rows, parts) = context
                finite[part] = Self.step(inputs, rows: rows * part / parts ..< rows * (part + 1) / parts, state: state.value, out: out.value)
            }
            return finite.allSatisfy { $0 }
        }
    }

    /// The step of rows `rows`, in order.
    @inline(__always)
    static func step(_ inputs: RowInputs<T>, rows: Range<Int>, state: UnsafeMutablePointer<T>, out: UnsafeMutablePointer<T>) -> Bool {
        let N = inputs.shape.state
        var work: (T, T, T) = (0, 0, 0)
        var finite = true
        withUnsafeMutableBytes(of: &work) { w in
            let work = w.baseAddress!.assumingMemoryBound(to: T.self)
            for row in rows {
                finite = T.selectiveScanForward(inputs.row(row), out: out + row, lastState: state + row * N, work: work) && finite
            }
        }
        return finite
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
        let (rows, N) = (shape.sequenceCount, shape.state)
        let softplus = deltaSoftplus
        let s = shape
        // With L = 1, (B, G, N, 1) is already the (B, G, 1, N) layout the rows read.
        withBaseAddresses([x.u, x.delta, x.a, x.b, x.c, x.d, x.z, x.deltaBias]) { p in
            state.withUnsafeMutableBufferPointer { state in
                // The row loop reads the whole initial state before it writes the last one,
                // so both may be the same memory.
                let inputs = RowInputs(p + [UnsafePointer(state.baseAddress!)], shape: s, softplus: softplus)
                out.withUnsafeMutableBufferPointer { out in
                    var work: (T, T, T) = (0, 0, 0)
                    withUnsafeMutableBytes(of: &work) { w in
                        let work = w.baseAddress!.assumingMemoryBound(to: T.self)
                        for row in 0 ..< rows {
                            // Every input was checked above: the row cannot report one.
                            _ = T.selectiveScanForward(inputs.row(row), out: out.baseAddress! + row,
                                                       lastState: state.baseAddress! + row * N, work: work)
                        }
                    }
                }
            }
        }
    }
}
