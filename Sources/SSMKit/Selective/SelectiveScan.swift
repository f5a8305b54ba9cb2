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
public struct SelectiveScan<T: SelectiveScanScalar>: Sendable {
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
    /// - Throws: ``SSMError`` for an input of the wrong size or with non-finite values, or
    ///   inputs whose output overflows `T`.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ x: SelectiveScanInputs<T>) throws(SSMError) -> (out: [T], lastState: [T]) {
        try shape.check(x, sequences: false)
        if OperationRecorder.isRecording { OperationRecorder.noteScan { _ = try? self.forward(x) } }
        let s = shape
        let bT = transposeProjection(x.b, s.b)
        let cT = transposeProjection(x.c, s.c)
        let workspace = SelectiveScanWorkspace<T>(self, backward: false)
        var last = [T](repeating: 0, count: s.stateCount)
        // Every row writes its whole slice of out (a row with a non-finite input zeroes it),
        // so out is not zero-filled first.
        var finite = true
        let out = [T](unsafeUninitializedCapacity: s.sequenceCount) { buffer, initialized in
            withBaseAddresses([x.u, x.delta, x.a, bT ?? x.b, cT ?? x.c, x.d, x.z, x.deltaBias, x.initialState]) { p in
                last.withUnsafeMutableBufferPointer { last in
                    finite = forwardRows(RowInputs(p, shape: s, softplus: deltaSoftplus), out: buffer.baseAddress!, lastState: last.baseAddress!,
                                         workspace: workspace)
                }
            }
            initialized = s.sequenceCount
        }
        if !finite { try shape.check(x) }
        // Finite inputs can still overflow the precision (|u| near Float's largest value).
        let overflowed = out.withUnsafeBufferPointer { !allFinite($0.baseAddress!, $0.count) }
            || last.withUnsafeBufferPointer { !allFinite($0.baseAddress!, $0.count) }
        if overflowed {
            throw SSMError.value(argument: "u, delta, A, B, C, D, z, delta_bias, initial_state",
                                 expected: "values whose scan stays finite (the output overflows \(T.self))")
        }
        return (out, last)
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
        let (D, N) = (s.channels, s.state)
        let bT = transposeProjection(x.b, s.b), cT = transposeProjection(x.c, s.c)
        let workspace = SelectiveScanWorkspace<T>(self, backward: true)
        var du = [T](repeating: 0, count: s.sequenceCount), dDelta = du
        var dz: [T]? = x.z == nil ? nil : du
        var dx0: [T]? = x.initialState == nil ? nil : [T](repeating: 0, count: s.stateCount)
        var dA = [T](repeating: 0, count: D * N)
        // B's and C's gradients in the layout the rows read ((B, G, L, N) for input-dependent ones).
        var dB = [T](repeating: 0, count: s.count(s.b)), dC = [T](repeating: 0, count: s.count(s.c))
        var dD: [T]? = x.d == nil ? nil : [T](repeating: 0, count: D)
        var dBias: [T]? = x.deltaBias == nil ? nil : [T](repeating: 0, count: D)
        var finite = true
        withBaseAddresses([x.u, x.delta, x.a, bT ?? x.b, cT ?? x.c, x.d, x.z, x.deltaBias, x.initialState, dOut]) { p in
            du.withUnsafeMutableBufferPointer { du in
            dDelta.withUnsafeMutableBufferPointer { dDelta in
            withOptionalMutablePointer(&dz) { dz in
            withOptionalMutablePointer(&dx0) { dx0 in
            dA.withUnsafeMutableBufferPointer { dA in
            dB.withUnsafeMutableBufferPointer { dB in
            dC.withUnsafeMutableBufferPointer { dC in
            withOptionalMutablePointer(&dD) { dD in
            withOptionalMutablePointer(&dBias) { dBias in
                let g = SelectiveScanGradientBuffers(u: du.baseAddress!, delta: dDelta.baseAddress!, z: dz, initialState: dx0, a: dA.baseAddress!,
                                                     b: dB.baseAddress!, c: dC.baseAddress!, d: dD, deltaBias: dBias)
                finite = backwardRows(RowInputs(p, shape: s, softplus: deltaSoftplus), dOut: p[9]!, into: g, workspace: workspace)
            }
            }
            }
            }
            }
            }
            }
            }
            }
        }
        if !finite {
            try shape.check(x)
            try checkValues(dOut, "d_out", shape.sequenceCount, sequence)
        }
        return SelectiveScanGradients(u: du, delta: dDelta, a: dA, b: untransposeProjection(dB, s.b), c: untransposeProjection(dC, s.c),
                                      d: dD, z: dz, deltaBias: dBias, initialState: dx0)
    }

    // MARK: buffers in place

    /// The scan on the caller's buffers, allocating nothing: out (B, D, L) and, when given, the
    /// last state (B, D, N) overwritten. B and C must be time-invariant or token-major (the
    /// layouts the rows read without a transpose; Mamba's x_proj output is token-major).
    ///
    /// The rows check their own u, delta and z (vectorized, while the data is in cache); A, B,
    /// C, D, delta_bias and the initial state are the caller's to keep finite.
    /// - Throws: ``SSMError`` for a (B, G, N, L) projection, a workspace made for another scan,
    ///   or a non-finite u, delta or z (out is then zero in the offending rows).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ x: SelectiveScanOperands<T>, out: UnsafeMutablePointer<T>, lastState: UnsafeMutablePointer<T>?,
                        workspace: SelectiveScanWorkspace<T>) throws(SSMError) {
        try checkInPlace(workspace, backward: false)
        if OperationRecorder.isRecording {
            let inputs = x.arrays(shape)
            OperationRecorder.noteScan { _ = try? self.forward(inputs) }
        }
        guard forwardRows(RowInputs(x, shape: shape, softplus: deltaSoftplus), out: out, lastState: lastState, workspace: workspace) else {
            throw SSMError.value(argument: "u, delta, z", expected: "finite values (row \(workspace.firstFlagged()) is not)")
        }
    }

    /// The backward pass on the caller's buffers, allocating nothing: du, dDelta, dz and dx0
    /// overwritten; dA, dB, dC, dD and d delta_bias added to (+=), dB and dC in the layouts of
    /// B and C (token-major ones with the same stride: columns outside the groups' are left
    /// alone).
    /// - Throws: as ``forward(_:out:lastState:workspace:)``, and for a non-finite dOut.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(_ x: SelectiveScanOperands<T>, dOut: UnsafePointer<T>, into g: SelectiveScanGradientBuffers<T>,
                         workspace: SelectiveScanWorkspace<T>) throws(SSMError) {
        try checkInPlace(workspace, backward: true)
        if OperationRecorder.isRecording {
            let (inputs, d) = (x.arrays(shape), Array(UnsafeBufferPointer(start: dOut, count: shape.sequenceCount)))
            OperationRecorder.noteScan { _ = try? self.backward(inputs, dOut: d) }
        }
        guard backwardRows(RowInputs(x, shape: shape, softplus: deltaSoftplus), dOut: dOut, into: g, workspace: workspace) else {
            throw SSMError.value(argument: "u, delta, z, d_out", expected: "finite values (row \(workspace.firstFlagged()) is not)")
        }
    }

    func checkInPlace(_ workspace: SelectiveScanWorkspace<T>, backward: Bool) throws(SSMError) {
        for (name, p) in [("B", shape.b), ("C", shape.c)] {
            if case .inputDependent = p {
                throw SSMError.value(argument: name, expected: "a time-invariant or token-major projection for the in-place scan, got (B, G, N, L)")
            }
        }
        guard workspace.shape == shape, workspace.threads == threads, workspace.chunk == min(chunkLength, shape.length),
              !backward || workspace.hasBackward else {
            throw SSMError.value(argument: "workspace", expected: "a workspace made for this scan\(backward ? " with backward: true" : "")")
        }
    }

    // MARK: the parallel rows

    /// Runs every row; false when some row met a non-finite value (flagged in the workspace).
    func forwardRows(_ inputs: RowInputs<T>, out: UnsafeMutablePointer<T>, lastState: UnsafeMutablePointer<T>?,
                     workspace w: SelectiveScanWorkspace<T>) -> Bool {
        let rows = shape.batch * shape.channels
        w.flags.update(repeating: 0, count: rows)
        WorkerPool.forEachInParallel(rows, threads: w.workers, ForwardRows(inputs: inputs, out: out, lastState: lastState, flags: w.flags,
                                                                           work: w.work, workSize: w.forwardWorkSize)) {
            rows, row, worker in rows.run(row, worker: worker)
        }
        return !(0 ..< rows).contains { w.flags[$0] != 0 }
    }

    /// One (b, d) row per task.
    struct ForwardRows {
        let inputs: RowInputs<T>
        let out: UnsafeMutablePointer<T>, lastState: UnsafeMutablePointer<T>?
        let flags: UnsafeMutablePointer<UInt8>, work: UnsafeMutablePointer<T>
        let workSize: Int

        func run(_ row: Int, worker: Int) {
            let (L, N) = (inputs.shape.length, inputs.shape.state)
            let finite = T.selectiveScanForward(inputs.row(row), out: out + row * L, lastState: lastState.map { $0 + row * N },
                                                work: work + worker * workSize)
            if !finite {
                flags[row] = 1
                (out + row * L).initialize(repeating: 0, count: L)
            }
        }
    }

    /// Tasks are (batch, part): a part is a contiguous range of channels. Part 0 of each batch
    /// adds input-dependent dB and dC straight into the caller's buffers (batches are disjoint
    /// there); the other parts, and every task of a time-invariant projection (one matrix for
    /// all batches), add into the workspace's partials, summed in task order at the end. dA,
    /// dD and d delta_bias are kept per row and summed over the batch in order, so the sums do
    /// not depend on which thread ran which task.
    func backwardRows(_ inputs: RowInputs<T>, dOut: UnsafePointer<T>, into g: SelectiveScanGradientBuffers<T>,
                      workspace w: SelectiveScanWorkspace<T>) -> Bool {
        let s = shape
        let (Bn, D, N) = (s.batch, s.channels, s.state)
        let rows = Bn * D
        w.flags.update(repeating: 0, count: rows)
        w.rowA.update(repeating: 0, count: rows * N)
        w.rowD.update(repeating: 0, count: 2 * rows)
        w.partialB.update(repeating: 0, count: w.partialCount(s.b))
        w.partialC.update(repeating: 0, count: w.partialCount(s.c))
        WorkerPool.forEachInParallel(Bn * w.parts, threads: w.backwardWorkers, BackwardTasks(
            inputs: inputs, dOut: dOut, g: g, parts: w.parts, rowA: w.rowA, rowD: w.rowD, partialB: w.partialB, partialC: w.partialC,
            blockB: w.block(s.b), blockC: w.block(s.c), flags: w.flags, work: w.work, workSize: w.backwardWorkSize, chunk: w.chunk)) {
            tasks, task, worker in tasks.run(task, worker: worker)
        }
        for b in 0 ..< Bn {
            for i in 0 ..< D * N { g.a[i] += w.rowA[b * D * N + i] }
            if let dD = g.d { for d in 0 ..< D { dD[d] += w.rowD[b * D + d] } }
            if let dBias = g.deltaBias { for d in 0 ..< D { dBias[d] += w.rowD[rows + b * D + d] } }
        }
        addPartials(w.partialB, s.b, into: g.b, workspace: w)
        addPartials(w.partialC, s.c, into: g.c, workspace: w)
        return !(0 ..< rows).contains { w.flags[$0] != 0 }
    }

    /// Adds the workspace's partials of dB or dC into the caller's buffer.
    func addPartials(_ partials: UnsafeMutablePointer<T>, _ projection: SelectiveProjection, into dB: UnsafeMutablePointer<T>,
                     workspace w: SelectiveScanWorkspace<T>) {
        let (Bn, L, N) = (shape.batch, shape.length, shape.state)
        let size = w.block(projection)
        switch projection {
        case .timeInvariant:
            for k in 0 ..< w.parts * Bn { for i in 0 ..< size { dB[i] += partials[k * size + i] } }
        case .inputDependent:
            for k in 0 ..< (w.parts - 1) * Bn {
                let b = k % Bn
                for i in 0 ..< size { dB[b * size + i] += partials[k * size + i] }
            }
        case let .tokenMajor(groups, stride):
            for k in 0 ..< (w.parts - 1) * Bn {
                let b = k % Bn
                for t in 0 ..< L {
                    let (to, from) = (dB + (b * L + t) * stride, partials + k * size + t * stride)
                    for i in 0 ..< groups * N { to[i] += from[i] }
                }
            }
        }
    }

    /// One (batch, part) per task.
    struct BackwardTasks {
        let inputs: RowInputs<T>
        let dOut: UnsafePointer<T>
        let g: SelectiveScanGradientBuffers<T>
        let parts: Int
        let rowA, rowD, partialB, partialC: UnsafeMutablePointer<T>
        let blockB, blockC: Int
        let flags: UnsafeMutablePointer<UInt8>, work: UnsafeMutablePointer<T>
        let workSize, chunk: Int

        func run(_ task: Int, worker: Int) {
            let s = inputs.shape
            let (Bn, D, L, N) = (s.batch, s.channels, s.length, s.state)
            let (b, part) = (task / parts, task % parts)
            for d in part * D / parts ..< (part + 1) * D / parts {
                let row = b * D + d
                let grads = SelectiveRowGradients(
                    u: g.u + row * L, delta: g.delta + row * L, z: g.z.map { $0 + row * L },
                    initialState: g.initialState.map { $0 + row * N }, a: rowA + row * N,
                    b: target(g.b, partialB, blockB, s.b, b: b, part: part, d: d),
                    c: target(g.c, partialC, blockC, s.c, b: b, part: part, d: d),
                    d: rowD + row, deltaBias: rowD + Bn * D + row)
                if !T.selectiveScanBackward(inputs.row(row), dOut: dOut + row * L, grads, chunk: chunk, work: work + worker * workSize) {
                    flags[row] = 1
                }
            }
        }

        /// Where row (b, d) of task part `part` adds its dB (or dC): the position of B_0 for
        /// that row in the caller's buffer or in a partial of the same layout.
        func target(_ caller: UnsafeMutablePointer<T>, _ partials: UnsafeMutablePointer<T>, _ block: Int, _ p: SelectiveProjection,
                    b: Int, part: Int, d: Int) -> UnsafeMutablePointer<T> {
            let s = inputs.shape
            let (L, N) = (s.length, s.state)
            switch p {
            case .timeInvariant:
                return partials + (part * s.batch + b) * block + d * N
            case .inputDependent:
                let base = part == 0 ? caller + b * block : partials + ((part - 1) * s.batch + b) * block
                return base + s.group(d, p) * L * N
            case let .tokenMajor(_, stride):
                let base = part == 0 ? caller + b * L * stride : partials + ((part - 1) * s.batch + b) * block
                return base + s.group(d, p) * N
            }
        }
    }

    // MARK: layouts

    /// Input-dependent B or C, (B, G, N, L), transposed to (B, G, L, N); nil otherwise.
    func transposeProjection(_ values: [T], _ projection: SelectiveProjection) -> [T]? {
        guard case let .inputDependent(groups) = projection else { return nil }
        return BLAS.transposed(values, batch: shape.batch * groups, rows: shape.state, cols: shape.length, threads: threads)
    }

    /// The inverse of ``transposeProjection(_:_:)``: (B, G, L, N) back to (B, G, N, L).
    func untransposeProjection(_ values: [T], _ projection: SelectiveProjection) -> [T] {
        guard case let .inputDependent(groups) = projection else { return values }
        return BLAS.transposed(values, batch: shape.batch * groups, rows: shape.length, cols: shape.state, threads: threads)
    }
}

/// The inputs of one scan in place, in ``SelectiveScanShape``'s layouts (B and C
/// time-invariant or token-major). Optional inputs are absent when nil.
public struct SelectiveScanOperands<T>: @unchecked Sendable {
    public var u, delta, a, b, c: UnsafePointer<T>
    public var d, z, deltaBias, initialState: UnsafePointer<T>?

    public init(u: UnsafePointer<T>, delta: UnsafePointer<T>, a: UnsafePointer<T>, b: UnsafePointer<T>, c: UnsafePointer<T>,
                d: UnsafePointer<T>? = nil, z: UnsafePointer<T>? = nil, deltaBias: UnsafePointer<T>? = nil,
                initialState: UnsafePointer<T>? = nil) {
        (self.u, self.delta, self.a, self.b, self.c) = (u, delta, a, b, c)
        (self.d, self.z, self.deltaBias, self.initialState) = (d, z, deltaBias, initialState)
    }

}

extension SelectiveScanOperands where T: Sendable {
    /// Copies, for the benchmark's replay of a recorded step.
    func arrays(_ s: SelectiveScanShape) -> SelectiveScanInputs<T> {
        func copy(_ p: UnsafePointer<T>?, _ count: Int) -> [T]? { p.map { Array(UnsafeBufferPointer(start: $0, count: count)) } }
        return SelectiveScanInputs(u: copy(u, s.sequenceCount)!, delta: copy(delta, s.sequenceCount)!, a: copy(a, s.channels * s.state)!,
                                   b: copy(b, s.count(s.b))!, c: copy(c, s.count(s.c))!, d: copy(d, s.channels),
                                   z: copy(z, s.sequenceCount), deltaBias: copy(deltaBias, s.channels),
                                   initialState: copy(initialState, s.stateCount))
    }
}

/// Where an in-place backward writes: u's, delta's, z's and initial_state's gradients
/// overwritten; A's (D, N), B's and C's (in their inputs' layouts), D's and delta_bias's (D)
/// added to.
public struct SelectiveScanGradientBuffers<T>: @unchecked Sendable {
    public var u, delta: UnsafeMutablePointer<T>
    public var z, initialState: UnsafeMutablePointer<T>?
    public var a, b, c: UnsafeMutablePointer<T>
    public var d, deltaBias: UnsafeMutablePointer<T>?

    public init(u: UnsafeMutablePointer<T>, delta: UnsafeMutablePointer<T>, z: UnsafeMutablePointer<T>? = nil,
                initialState: UnsafeMutablePointer<T>? = nil, a: UnsafeMutablePointer<T>, b: UnsafeMutablePointer<T>,
                c: UnsafeMutablePointer<T>, d: UnsafeMutablePointer<T>? = nil, deltaBias: UnsafeMutablePointer<T>? = nil) {
        (self.u, self.delta, self.z, self.initialState) = (u, delta, z, initialState)
        (self.a, self.b, self.c, self.d, self.deltaBias) = (a, b, c, d, deltaBias)
    }
}

/// The scratch of one ``SelectiveScan``: per-worker row work, per-row flags and, for the
/// backward pass, per-row dA, dD and d delta_bias and the partials of dB and dC. Made once
/// and passed to every in-place call; one call at a time may use it.
public final class SelectiveScanWorkspace<T: SelectiveScanScalar>: @unchecked Sendable {
    public let shape: SelectiveScanShape
    let threads: Int, chunk: Int, hasBackward: Bool
    let workers: Int, backwardWorkers: Int, parts: Int
    let forwardWorkSize: Int, backwardWorkSize: Int
    let work: UnsafeMutablePointer<T>
    let flags: UnsafeMutablePointer<UInt8>
    let rowA, rowD, partialB, partialC: UnsafeMutablePointer<T>

    /// Scratch for `scan`'s forward pass, and for its backward pass too when `backward`.
    public init(_ scan: SelectiveScan<T>, backward: Bool) {
        let s = scan.shape
        let (Bn, D, L, N) = (s.batch, s.channels, s.length, s.state)
        (shape, threads, chunk, hasBackward) = (s, scan.threads, min(scan.chunkLength, L), backward)
        workers = max(1, min(scan.threads, Bn * D))
        parts = min(D, max(1, (2 * scan.threads + Bn - 1) / Bn))
        backwardWorkers = max(1, min(scan.threads, Bn * parts))
        forwardWorkSize = selectiveForwardWork(length: L)
        backwardWorkSize = backward ? selectiveBackwardWork(length: L, state: N, chunk: chunk) : 0
        work = .allocate(capacity: max(workers * forwardWorkSize, backwardWorkers * backwardWorkSize, 1))
        flags = .allocate(capacity: Bn * D)
        rowA = .allocate(capacity: backward ? Bn * D * N : 1)
        rowD = .allocate(capacity: backward ? 2 * Bn * D : 1)
        let parts = self.parts
        func partials(_ p: SelectiveProjection) -> Int {
            switch p {
            case .timeInvariant: parts * Bn * D * N
            case let .inputDependent(groups): (parts - 1) * Bn * groups * L * N
            case let .tokenMajor(_, stride): (parts - 1) * Bn * L * stride
            }
        }
        (partialB, partialC) = (.allocate(capacity: backward ? max(1, partials(s.b)) : 1), .allocate(capacity: backward ? max(1, partials(s.c)) : 1))
    }

    deinit {
        for p in [work, rowA, rowD, partialB, partialC] { p.deallocate() }
        flags.deallocate()
    }

    /// The scalars of one task's partial of dB or dC.
    func block(_ p: SelectiveProjection) -> Int {
        switch p {
        case .timeInvariant: shape.channels * shape.state
        case let .inputDependent(groups): groups * shape.length * shape.state
        case let .tokenMajor(_, stride): shape.length * stride
        }
    }

    /// The scalars of all partials of dB or dC.
    func partialCount(_ p: SelectiveProjection) -> Int {
        switch p {
        case .timeInvariant: hasBackward ? parts * shape.batch * block(p) : 0
        case .inputDependent, .tokenMajor: hasBackward ? (parts - 1) * shape.batch * block(p) : 0
        }
    }

    /// The first row flagged non-finite by the last call.
    func firstFlagged() -> Int { (0 ..< shape.batch * shape.channels).first { flags[$0] != 0 } ?? 0 }
}

/// The pinned inputs of one call, and the row view CSSMKitKernels takes.
struct RowInputs<T: SelectiveScanScalar>: @unchecked Sendable {
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

    init(_ x: SelectiveScanOperands<T>, shape: SelectiveScanShape, softplus: Bool) {
        (u, delta, a, b, c) = (x.u, x.delta, x.a, x.b, x.c)
        (d, z, deltaBias, initialState) = (x.d, x.z, x.deltaBias, x.initialState)
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
            case let .tokenMajor(_, stride): (base + batch * L * stride + shape.group(channel, p) * N, stride)
            }
        }
        let (bp, bStep) = projection(b, shape.b), (cp, cStep) = projection(c, shape.c)
        return SelectiveRow(length: L, state: N, u: u + row * L, delta: delta + row * L, a: a + channel * N,
                            b: bp, bStep: bStep, c: cp, cStep: cStep, z: z.map { $0 + row * L },
                            dSkip: d?[channel] ?? 0, deltaBias: deltaBias?[channel] ?? 0, softplus: softplus,
                            initialState: initialState.map { $0 + row * N })
    }
}
