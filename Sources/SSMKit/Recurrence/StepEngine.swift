/// The fast step engine of recurrent mode: the step operators of ``S4DRecurrence`` and
/// ``S4Recurrence`` (set up in Double there) rounded once to T, stepped by the C loops of
/// CSSMKitKernels (AVX2 / AVX-512 clones, vectorized over the state).
///
/// Legend: B batch · C output copies · H channels · n complex state entries per row (N/2 for
/// S4D and S4 `linear`, N for S4 `dense` and `diagonal`) · R rank.
///
/// - `step(_:u:y:)` (on arrays, or on the caller's pointers) advances every (batch, channel)
///   row by one input and allocates nothing.
/// - ``run(_:u:y:length:)`` steps whole sequences, rows in parallel, each row's state in
///   registers for all its steps: the throughput form.
///
/// Per step and row it costs ``flopsPerRow`` flops and reads ``operatorScalarsPerChannel``
/// operator scalars (once per channel and step in `step(_:u:y:)`, which walks the batch of
/// a channel together).
public struct StepEngine<T: StepRowScalar>: Sendable {
    public let form: StepForm
    public let channels: Int
    public let copies: Int
    /// Complex state entries per row.
    public let size: Int
    public let rank: Int
    /// 2 when the state holds one of each conjugate pair, 1 when it is the full state.
    let scale: T
    /// Worker threads of ``run(_:u:y:length:)``.
    public var threads: Int
    /// The operators, pinned once (see ``StepOperators``).
    let operators: StepOperators<T>

    /// The state of `batch` sequences: x (B, H, n) complex, split into real and imaginary parts.
    public struct State: Sendable, Equatable {
        public var batch: Int
        public var xRe: [T]
        public var xIm: [T]
    }

    /// S4D: the diagonal recurrence of an ``S4DRecurrence`` (half state, y = 2·Re(C·x) + D·u).
    public init(_ r: S4DRecurrence<T>, threads: Int? = nil) {
        form = .diagonal
        (channels, copies, size, rank, scale) = (r.channels, 1, r.modes, 0, 2)
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        operators = StepOperators(re: r.aBar.map(\.real), im: r.aBar.map(\.imaginary), bRe: r.bBar.map(\.real),
                                  bIm: r.bBar.map(\.imaginary), dinvRe: [], dinvIm: [], aRe: [], aIm: [], inverse: [],
                                  cRe: r.c.map(\.real), cIm: r.c.map(\.imaginary), d: r.d)
    }

    /// S4: the step operators of an ``S4Recurrence`` in its step mode, rounded to T.
    public init(_ r: S4Recurrence, as _: T.Type = T.self, threads: Int? = nil) {
        (channels, copies, rank) = (r.channels, r.copies, r.mode == .linear ? r.rank : 0)
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        func split(_ z: [Complex<Double>]) -> ([T], [T]) { (z.map { T($0.real) }, z.map { T($0.imaginary) }) }
        var re = [T](), im = [T](), bRe = [T](), bIm = [T](), dinvRe = [T](), dinvIm = [T](), aRe = [T](), aIm = [T](), inverse = [T]()
        var size = 0
        for h in 0 ..< r.channels {
            switch r.steppers[h] {
            case let .diagonal(mu, bBar):
                size = mu.count
                let (m, b) = (split(mu), split(bBar))
                re += m.0; im += m.1; bRe += b.0; bIm += b.1
            case let .dense(aBar, bBar):
                size = bBar.count
                let (a, b) = (split(aBar.flatMap { $0 }), split(bBar))
                aRe += a.0; aIm += a.1; bRe += b.0; bIm += b.1
            case let .linear(plus, dinv, p, twoB, inv):
                size = plus.count
                let (pl, di, pp, tb) = (split(plus), split(dinv), split(p.flatMap { $0 }), split(twoB))
                re += pl.0; im += pl.1; dinvRe += di.0; dinvIm += di.1; aRe += pp.0; aIm += pp.1; bRe += tb.0; bIm += tb.1
                inverse += inv.flatMap { $0 }.map { T($0) }
            }
        }
        switch r.mode {
        case .diagonal: form = .diagonal
        case .dense: form = .dense
        case .linear: form = .linear
        }
        self.size = size
        scale = r.mode == .linear ? 2 : 1
        let c = split(r.outputs.flatMap { $0 })
        operators = StepOperators(re: re, im: im, bRe: bRe, bIm: bIm, dinvRe: dinvRe, dinvIm: dinvIm, aRe: aRe, aIm: aIm,
                                  inverse: inverse, cRe: c.0, cIm: c.1, d: r.skip.isEmpty ? nil : r.skip.map { T($0) })
    }

    /// Flops of one row's step, counting a multiply and an add as two: diagonal 10n (Ā x + B̄ u),
    /// linear (24 + 12R)n (two complex products and an input term, 2R real dot products, 2R
    /// complex AXPYs), dense 8n² + 4n; plus 4n per output copy.
    public var flopsPerRow: Int {
        let n = size
        let update = switch form {
        case .diagonal: 10 * n
        case .linear: (24 + 12 * rank) * n
        case .dense: 8 * n * n + 4 * n
        }
        return update + 4 * n * copies
    }

    /// Scalars of one channel's operator: diagonal 4n (Ā, B̄); linear (6 + 2R)n + R² (2/Δ + Λ,
    /// D, 2B, P, the R × R inverse); dense 2n² + 2n; plus 2nC for C.
    public var operatorScalarsPerChannel: Int {
        let n = size
        let op = switch form {
        case .diagonal: 4 * n
        case .linear: (6 + 2 * rank) * n + rank * rank
        case .dense: 2 * n * n + 2 * n
        }
        return op + 2 * n * copies
    }

    /// A zero state for `batch` sequences.
    public func makeState(batch: Int) throws(SSMError) -> State {
        guard batch >= 1 else { throw SSMError.value(argument: "batch", expected: "a positive count, got \(batch)") }
        let count = batch * channels * size
        return State(batch: batch, xRe: [T](repeating: 0, count: count), xIm: [T](repeating: 0, count: count))
    }

    /// One step of every row: u: (B, H) → y: (B, C, H). Allocates nothing.
    /// - Throws: ``SSMError`` for a wrong count.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func step(_ state: inout State, u: [T], y: inout [T]) throws(SSMError) {
        try check(state)
        let (B, H, C) = (state.batch, channels, copies)
        if u.count != B * H { throw SSMError.shape(argument: "u", expected: "(B, H) = (\(B), \(H))", actual: [u.count]) }
        if y.count != B * C * H { throw SSMError.shape(argument: "y", expected: "(B, C, H) = (\(B), \(C), \(H))", actual: [y.count]) }
        u.withUnsafeBufferPointer { u in
            y.withUnsafeMutableBufferPointer { y in stepRows(&state, u.baseAddress!, y.baseAddress!) }
        }
    }

    /// The step on the caller's buffers, which must hold B·H values (u) and B·C·H (y) for the
    /// state's B (the array form checks those counts). Allocates nothing. A state of another
    /// engine's size (e.g. a `linear` state given to a `dense` engine) stops the program: the
    /// array forms throw for it.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func step(_ state: inout State, u: UnsafePointer<T>, y: UnsafeMutablePointer<T>) {
        precondition(state.batch >= 1 && state.xRe.count == state.batch * channels * size && state.xIm.count == state.xRe.count,
                     "StepEngine.step: the state holds \(state.xRe.count) values, not B·H·n = \(state.batch)·\(channels)·\(size)")
        stepRows(&state, u, y)
    }

    /// Throws unless `state` holds B·H·n values in each part for its B (a state made by an
    /// engine of another form or size does not).
    func check(_ state: State) throws(SSMError) {
        let count = state.batch.multipliedReportingOverflow(by: channels * size)
        guard state.batch >= 1, !count.overflow, state.xRe.count == count.partialValue, state.xIm.count == count.partialValue else {
            throw SSMError.shape(argument: "state", expected: "(B, H, n) = (\(state.batch), \(channels), \(size)) in each of its real and imaginary parts",
                                 actual: [state.xRe.count, state.xIm.count])
        }
    }

    @inline(__always)
    func stepRows(_ state: inout State, _ u: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
        let (B, H, C) = (state.batch, channels, copies)
        let workCount = 2 * size
        withUnsafeTemporaryAllocation(of: T.self, capacity: max(1, workCount)) { work in
            state.xRe.withUnsafeMutableBufferPointer { xRe in
                state.xIm.withUnsafeMutableBufferPointer { xIm in
                    // Channel-major, so each channel's operator is read once per step.
                    for h in 0 ..< H {
                        for b in 0 ..< B {
                            let row = b * H + h
                            stepRow(h, u: u + row, uStride: 1, y: y + b * C * H + h, yCopy: H, yStride: 1, steps: 1,
                                    xRe: xRe.baseAddress! + row * size, xIm: xIm.baseAddress! + row * size, work: work.baseAddress!)
                        }
                    }
                }
            }
        }
    }

    /// Steps whole sequences: u: (B, H, L) → y: (B, C, H, L), advancing `state` by L steps.
    /// Rows run in parallel on ``threads`` threads.
    /// - Throws: ``SSMError`` for a wrong count.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func run(_ state: inout State, u: [T], y: inout [T], length L: Int) throws(SSMError) {
        try check(state)
        let (B, H, C) = (state.batch, channels, copies)
        if u.count != B * H * L { throw SSMError.shape(argument: "u", expected: "(B, H, L) = (\(B), \(H), \(L))", actual: [u.count]) }
        if y.count != B * C * H * L { throw SSMError.shape(argument: "y", expected: "(B, C, H, L) = (\(B), \(C), \(H), \(L))", actual: [y.count]) }
        let rows = B * H
        let workers = max(1, min(threads, rows))
        let w = Workspace<T>()
        let work = SendableBox(w.zeros(workers * 2 * size))
        let n = size
        let engine = self
        u.withUnsafeBufferPointer { u in
            y.withUnsafeMutableBufferPointer { y in
                state.xRe.withUnsafeMutableBufferPointer { xRe in
                    state.xIm.withUnsafeMutableBufferPointer { xIm in
                        let (uP, yP) = (SendableBox(UnsafeMutablePointer(mutating: u.baseAddress!)), SendableBox(y.baseAddress!))
                        let (reP, imP) = (SendableBox(xRe.baseAddress!), SendableBox(xIm.baseAddress!))
                        // One contiguous block of rows per worker.
                        WorkerPool.shared.runTasks(workers, workers: workers) { task, worker in
                            for row in task * rows / workers ..< (task + 1) * rows / workers {
                                let (b, h) = (row / H, row % H)
                                engine.stepRow(h, u: uP.value + row * L, uStride: 1, y: yP.value + (b * C * H + h) * L,
                                               yCopy: H * L, yStride: 1, steps: L, xRe: reP.value + row * n,
                                               xIm: imP.value + row * n, work: work.value + worker * 2 * n)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Channel h's row loop over `steps` inputs.
    @inline(__always)
    func stepRow(_ h: Int, u: UnsafePointer<T>, uStride: Int, y: UnsafeMutablePointer<T>, yCopy: Int, yStride: Int,
                 steps: Int, xRe: UnsafeMutablePointer<T>, xIm: UnsafeMutablePointer<T>, work: UnsafeMutablePointer<T>) {
        let (n, H, R, o) = (size, channels, rank, operators)
        let aStride = form == .dense ? n * n : R * n
        let io = StepRowIO(size: n, copies: copies, cRe: o.cRe + h * n, cIm: o.cIm + h * n, cStride: H * n,
                           d: o.d.map { $0 + h }, dStride: H, scale: scale, u: u, uStride: uStride, y: y, yCopy: yCopy,
                           yStride: yStride, steps: steps)
        let p = StepRowParameters(form: form, re: o.re + h * n, im: o.im + h * n, bRe: o.bRe + h * n, bIm: o.bIm + h * n,
                                  dinvRe: o.dinvRe + h * n, dinvIm: o.dinvIm + h * n, aRe: o.aRe + h * aStride,
                                  aIm: o.aIm + h * aStride, inverse: o.inverse + h * R * R, rank: R)
        T.stepRow(io, p, xRe: xRe, xIm: xIm, work: work)
    }
}

/// A step engine's operators in memory allocated once and never written again, so that each
/// row's loop gets plain pointers (arrays would need a closure per buffer and call). Absent
/// operators are one-element dummies that the row's form never reads; d is nil when absent.
final class StepOperators<T: StepRowScalar>: @unchecked Sendable {
    let re, im, bRe, bIm, dinvRe, dinvIm, aRe, aIm, inverse, cRe, cIm: UnsafePointer<T>
    let d: UnsafePointer<T>?
    private var buffers: [UnsafeMutableBufferPointer<T>] = []

    init(re: [T], im: [T], bRe: [T], bIm: [T], dinvRe: [T], dinvIm: [T], aRe: [T], aIm: [T], inverse: [T],
         cRe: [T], cIm: [T], d: [T]?) {
        var buffers: [UnsafeMutableBufferPointer<T>] = []
        func pin(_ values: [T]) -> UnsafePointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, values.count))
            b.initialize(repeating: 0)
            _ = b.initialize(from: values)
            buffers.append(b)
            return UnsafePointer(b.baseAddress!)
        }
        (self.re, self.im, self.bRe, self.bIm) = (pin(re), pin(im), pin(bRe), pin(bIm))
        (self.dinvRe, self.dinvIm, self.aRe, self.aIm, self.inverse) = (pin(dinvRe), pin(dinvIm), pin(aRe), pin(aIm), pin(inverse))
        (self.cRe, self.cIm) = (pin(cRe), pin(cIm))
        self.d = d.map(pin)
        self.buffers = buffers
    }

    deinit { for b in buffers { b.deallocate() } }
}
