/// The selective scan (S6) of Mamba, with exactly the semantics of the official
/// `selective_scan_ref` (state-spaces/mamba) for real A. For each batch b and channel d:
///
///     dt_t = softplus(delta_t + delta_bias_d)     (softplus when `deltaSoftplus`; = v above 20)
///     x_t  = exp(dt_t A_d) ⊙ x_{t−1} + dt_t u_t B_t        x_{−1} = initial state or 0
///     y_t  = C_t · x_t + D_d u_t,   out_t = y_t · silu(z_t)   (when z is given)
///
/// The fast path runs one (b, d) row at a time in C (CSSMKitKernels), its state x: (N) in registers
/// or L1 for the whole sequence, vectorized over N with a vectorized exponential (AVX2 /
/// AVX-512 clones), rows in parallel; input-dependent B and C are transposed once per call to
/// (B, G, L, N) so that each step reads N contiguous values. Nothing of size B·D·L·N is ever
/// formed. ``reference(_:)`` is the plain loop beside it.
///
/// The backward pass recomputes states: a forward sweep keeps the state every `chunkLength`
/// steps, then each chunk is re-run (its states and factors e^{dt A} kept in a (2·chunk + 1)·N
/// scratch) and swept in reverse. Memory: O(L/chunk · N + chunk · N) per worker.
public struct SelectiveScan<T: FFTScalar>: Sendable {
    public let shape: SelectiveScanShape
    /// Apply softplus to delta + delta_bias (Mamba does).
    public var deltaSoftplus: Bool
    /// Worker threads per call (rows run in parallel).
    public var threads: Int
    /// Steps per recomputed chunk in the backward pass (see the README for the measurement
    /// that chose the default).
    public var chunkLength: Int

    public static var defaultChunkLength: Int { 256 }

    public init(shape: SelectiveScanShape, deltaSoftplus: Bool = false, threads: Int? = nil,
                chunkLength: Int = SelectiveScan.defaultChunkLength) throws(SSMError) {
        if let threads, threads < 1 { throw SSMError.value(argument: "threads", expected: "a positive count, got \(threads)") }
        if chunkLength < 1 { throw SSMError.value(argument: "chunkLength", expected: "a positive step count, got \(chunkLength)") }
        self.shape = shape
        self.deltaSoftplus = deltaSoftplus
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        self.chunkLength = chunkLength
    }

    /// out: (B, D, L) and the last state x_{L−1}: (B, D, N).
    /// - Throws: ``SSMError`` for an input of the wrong size or with non-finite values.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ x: SelectiveScanInputs<T>) throws(SSMError) -> (out: [T], lastState: [T]) {
        try shape.check(x, sequences: false)
        if OperationRecorder.isRecording { OperationRecorder.noteScan { _ = try? self.forward(x) } }
        let s = shape
        let (D, L, N) = (s.channels, s.length, s.state)
        let rows = s.batch * D
        let workers = max(1, min(threads, rows))
        let bT = transposeProjection(x.b, s.b)
        let cT = transposeProjection(x.c, s.c)
        let w = Workspace<T>()
        let nonFinite = SendablePointer(w.zeros(rows))
        let last = SendablePointer(w.zeros(s.stateCount))
        let work = SendablePointer(w.zeros(workers * selectiveForwardWork(length: L)))
        let softplus = deltaSoftplus
        // Every row writes its whole slice of out (a row with a non-finite input zeroes it),
        // so out is not zero-filled first.
        let out = [T](unsafeUninitializedCapacity: s.sequenceCount) { buffer, initialized in
            let outP = SendablePointer(buffer.baseAddress!)
            withBaseAddresses([x.u, x.delta, x.a, bT ?? x.b, cT ?? x.c, x.d, x.z, x.deltaBias, x.initialState]) { p in
                let inputs = RowInputs(p, shape: s, softplus: softplus)
                WorkerPool.shared.runTasks(rows, workers: workers) { row, worker in
                    let finite = T.selectiveScanForward(inputs.row(row), out: outP.pointer + row * L, lastState: last.pointer + row * N,
                                                        work: work.pointer + worker * selectiveForwardWork(length: L))
                    if !finite {
                        nonFinite.pointer[row] = 1
                        (outP.pointer + row * L).initialize(repeating: 0, count: L)
                    }
                }
            }
            initialized = s.sequenceCount
        }
        if (0 ..< rows).contains(where: { nonFinite.pointer[$0] != 0 }) { try shape.check(x) }
        return (out, array(last.pointer, s.stateCount))
    }

    /// Gradients of Σ dOut ⊙ out with respect to every input given.
    /// - Throws: ``SSMError`` for an input or dOut of the wrong size or with non-finite values.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(_ x: SelectiveScanInputs<T>, dOut: [T]) throws(SSMError) -> SelectiveScanGradients<T> {
        let sequence = "(B, D, L) = (\(shape.batch), \(shape.channels), \(shape.length))"
        try shape.check(x, sequences: false)
        try checkValues(dOut, "d_out", shape.sequenceCount, sequence, finite: false)
        if OperationRecorder.isRecording { OperationRecorder.noteScan { _ = try? self.backward(x, dOut: dOut) } }
        let s = shape
        let (Bn, D, L, N) = (s.batch, s.channels, s.length, s.state)
        let chunk = min(chunkLength, L)
        let workSize = selectiveBackwardWork(length: L, state: N, chunk: chunk)
        // Tasks are (batch, part): a part is a contiguous range of channels. Parts accumulate
        // input-dependent dB and dC into their own (G, L, N) buffers, summed at the end.
        let parts = min(D, max(1, (2 * threads + Bn - 1) / Bn))
        let tasks = Bn * parts
        let workers = max(1, min(threads, tasks))
        let bT = transposeProjection(x.b, s.b), cT = transposeProjection(x.c, s.c)

        let w = Workspace<T>()
        let partialB = partialSize(s.b), partialC = partialSize(s.c)
        // dA, dD and d delta_bias are kept per row and summed over the batch below.
        let g = BackwardBuffers<T>(
            du: w.zeros(s.sequenceCount), dDelta: w.zeros(s.sequenceCount),
            dz: x.z == nil ? nil : w.zeros(s.sequenceCount), dx0: x.initialState == nil ? nil : w.zeros(s.stateCount),
            dA: w.zeros(Bn * D * N), dB: w.zeros(parts * Bn * partialB), dC: w.zeros(parts * Bn * partialC),
            dD: w.zeros(Bn * D), dBias: w.zeros(Bn * D), work: w.zeros(workers * workSize))
        let nonFinite = SendablePointer(w.zeros(Bn * D))
        let softplus = deltaSoftplus
        withBaseAddresses([x.u, x.delta, x.a, bT ?? x.b, cT ?? x.c, x.d, x.z, x.deltaBias, x.initialState, dOut]) { p in
            let inputs = RowInputs(p, shape: s, softplus: softplus)
            let dOut = SendablePointer(UnsafeMutablePointer(mutating: p[9]!))
            WorkerPool.shared.runTasks(tasks, workers: workers) { task, worker in
                let (b, part) = (task / parts, task % parts)
                for d in part * D / parts ..< (part + 1) * D / parts {
                    let row = b * D + d
                    let bBase = g.dB + (part * Bn + b) * partialB, cBase = g.dC + (part * Bn + b) * partialC
                    let grads = SelectiveRowGradients(
                        u: g.du + row * L, delta: g.dDelta + row * L, z: g.dz.map { $0 + row * L },
                        initialState: g.dx0.map { $0 + row * N }, a: g.dA + row * N,
                        b: bBase + (s.b == .timeInvariant ? d * N : s.group(d, s.b) * L * N),
                        c: cBase + (s.c == .timeInvariant ? d * N : s.group(d, s.c) * L * N),
                        d: g.dD + row, deltaBias: g.dBias + row)
                    let finite = T.selectiveScanBackward(inputs.row(row), dOut: dOut.pointer + row * L, grads, chunk: chunk,
                                                         work: g.work + worker * workSize)
                    if !finite { nonFinite.pointer[row] = 1 }
                }
            }
        }
        if (0 ..< Bn * D).contains(where: { nonFinite.pointer[$0] != 0 }) {
            try shape.check(x)
            try checkValues(dOut, "d_out", shape.sequenceCount, sequence)
        }
        return SelectiveScanGradients(
            u: array(g.du, s.sequenceCount), delta: array(g.dDelta, s.sequenceCount),
            a: sumOverBatch(array(g.dA, Bn * D * N), Bn),
            b: reducePartials(array(g.dB, parts * Bn * partialB), s.b, parts: parts),
            c: reducePartials(array(g.dC, parts * Bn * partialC), s.c, parts: parts),
            d: x.d == nil ? nil : sumOverBatch(array(g.dD, Bn * D), Bn), z: g.dz.map { array($0, s.sequenceCount) },
            deltaBias: x.deltaBias == nil ? nil : sumOverBatch(array(g.dBias, Bn * D), Bn),
            initialState: g.dx0.map { array($0, s.stateCount) })
    }

    // MARK: layouts

    /// Input-dependent B or C, (B, G, N, L), transposed to (B, G, L, N); nil when time-invariant.
    func transposeProjection(_ values: [T], _ projection: SelectiveProjection) -> [T]? {
        guard case let .inputDependent(groups) = projection else { return nil }
        let (N, L) = (shape.state, shape.length)
        var t = [T](repeating: 0, count: values.count)
        for m in 0 ..< shape.batch * groups {
            for n in 0 ..< N {
                for l in 0 ..< L { t[(m * L + l) * N + n] = values[(m * N + n) * L + l] }
            }
        }
        return t
    }

    /// Scalars of one (part, batch) partial of dB or dC: (D, N) for a time-invariant
    /// projection (one slot per channel), (G, L, N) for an input-dependent one.
    func partialSize(_ projection: SelectiveProjection) -> Int {
        switch projection {
        case .timeInvariant: shape.channels * shape.state
        case let .inputDependent(groups): groups * shape.length * shape.state
        }
    }

    /// Sums the (parts, B) partials into the input's layout.
    func reducePartials(_ partials: [T], _ projection: SelectiveProjection, parts: Int) -> [T] {
        let size = partialSize(projection)
        switch projection {
        case .timeInvariant:
            return sumOverBatch(partials, parts * shape.batch)
        case let .inputDependent(groups):
            let (N, L) = (shape.state, shape.length)
            var out = [T](repeating: 0, count: shape.count(projection))
            for b in 0 ..< shape.batch {
                for p in 0 ..< parts {
                    let base = (p * shape.batch + b) * size
                    for g in 0 ..< groups {
                        for l in 0 ..< L {
                            for n in 0 ..< N { out[((b * groups + g) * N + n) * L + l] += partials[base + (g * L + l) * N + n] }
                        }
                    }
                }
            }
            return out
        }
    }
}

/// Where the backward's worker threads write: each row owns its slices of du, dDelta, dz, dx0,
/// dA, dD and dBias; each (part, batch) task owns its dB and dC partials; each worker its work.
struct BackwardBuffers<T>: @unchecked Sendable {
    let du, dDelta: UnsafeMutablePointer<T>
    let dz, dx0: UnsafeMutablePointer<T>?
    let dA, dB, dC, dD, dBias, work: UnsafeMutablePointer<T>
}

/// Sums `copies` consecutive blocks of equal size.
func sumOverBatch<T: FFTScalar>(_ values: [T], _ copies: Int) -> [T] {
    let size = values.count / copies
    var sum = [T](repeating: 0, count: size)
    for k in 0 ..< copies {
        for i in 0 ..< size { sum[i] += values[k * size + i] }
    }
    return sum
}

/// The pinned inputs of one call, and the row view CSSMKitKernels takes.
struct RowInputs<T: FFTScalar>: @unchecked Sendable {
    let u, delta, a, b, c: UnsafePointer<T>
    let d, z, deltaBias, initialState: UnsafePointer<T>?
    let shape: SelectiveScanShape
    let softplus: Bool

    /// `p`: u, delta, A, B (transposed when input-dependent), C (likewise), D, z, delta_bias,
    /// initial_state, as given to ``withBaseAddresses(_:_:)``.
    init(_ p: [UnsafePointer<T>?], shape: SelectiveScanShape, softplus: Bool) {
        (u, delta, a, b, c) = (p[0]!, p[1]!, p[2]!, p[3]!, p[4]!)
        (d, z, deltaBias, initialState) = (p[5], p[6], p[7], p[8])
        self.shape = shape
        self.softplus = softplus
    }

    /// Row `row` = b·D + d.
    func row(_ row: Int) -> SelectiveRow<T> {
        let (D, L, N) = (shape.channels, shape.length, shape.state)
        let (batch, channel) = (row / D, row % D)
        func projection(_ base: UnsafePointer<T>, _ p: SelectiveProjection) -> (UnsafePointer<T>, Int) {
            switch p {
            case .timeInvariant: (base + channel * N, 0)
            case let .inputDependent(groups): (base + (batch * groups + shape.group(channel, p)) * L * N, N)
            }
        }
        let (bp, bStep) = projection(b, shape.b), (cp, cStep) = projection(c, shape.c)
        return SelectiveRow(length: L, state: N, u: u + row * L, delta: delta + row * L, a: a + channel * N,
                            b: bp, bStep: bStep, c: cp, cStep: cStep, z: z.map { $0 + row * L },
                            dSkip: d?[channel] ?? 0, deltaBias: deltaBias?[channel] ?? 0, softplus: softplus,
                            initialState: initialState.map { $0 + row * N })
    }
}
