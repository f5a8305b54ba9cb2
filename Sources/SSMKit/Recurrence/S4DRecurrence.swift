import ComplexModule
import RealModule

/// Recurrent (step-by-step) mode of the S4D kernel: the same Ā, B̄, C as ``S4DKernel``, so that
/// stepping L inputs reproduces the convolution with K̄ to rounding.
///
/// Legend: B batch · H channels · N2 complex modes.
///
///     x_t = Ā ⊙ x_{t−1} + B̄ u_t,   y_t = 2·Re(C · x_t) + D u_t     (x: c(B, H, N2))
///
/// Ā and B̄ are computed in Double (as the kernel's modes) and rounded to T once; the state is
/// kept in T. O(N2) work per channel and step; no allocation per step.
public struct S4DRecurrence<T: FFTScalar>: Sendable {
    public let channels: Int
    public let modes: Int
    /// Ā: c(H, N2)
    public let aBar: [Complex<T>]
    /// B̄ = β·B: c(H, N2)
    public let bBar: [Complex<T>]
    /// C: c(H, N2)
    public let c: [Complex<T>]
    /// D: (H), or nil.
    public let d: [T]?
    /// Ā and log Ā per mode in Double, for exact powers in the state-carry functions.
    let exactModes: [DiscreteMode<Double>]

    /// The step-mode state: x of shape c(B, H, N2), zero or given.
    public struct State: Sendable {
        public var batch: Int
        public var x: [Complex<T>]
    }

    /// Discretizes the kernel's parameters (see ``S4DKernel``) for stepping.
    /// - Throws: ``SSMError`` for wrong counts (D must be (H)).
    public init(kernel: S4DKernel<T>, logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T],
                b: [Complex<T>]? = nil, d: [T]? = nil) throws(SSMError) {
        try kernel.check(logDt: logDt, c: c, logAReal: logAReal, aImag: aImag, b: b)
        if let d, d.count != kernel.channels {
            throw SSMError.shape(argument: "D", expected: "(H) = (\(kernel.channels))", actual: [d.count])
        }
        channels = kernel.channels
        modes = kernel.modes
        var aBar: [Complex<T>] = [], bBar: [Complex<T>] = [], exactModes: [DiscreteMode<Double>] = []
        for h in 0 ..< channels {
            for n in 0 ..< modes {
                let (_, _, m) = kernel.mode(h, n, logDt: logDt, logAReal: logAReal, aImag: aImag)
                exactModes.append(m)
                aBar.append(complexT(m.aBar, T.self))
                bBar.append(complexT(m.bBarScale * complexDouble(b?[h * modes + n] ?? Complex(1)), T.self))
            }
        }
        // log_dt = 800 makes Δ infinite: the kernel refuses that, and so does its recurrence.
        guard (aBar + bBar).allSatisfy({ $0.real.isFinite && $0.imaginary.isFinite }) else {
            throw SSMError.value(argument: "log_dt", expected: "values whose Δ = exp(log_dt) discretizes A and B to finite Ā and B̄")
        }
        self.aBar = aBar
        self.bBar = bBar
        self.exactModes = exactModes
        self.c = c
        self.d = d
    }

    /// A state for `batch` sequences: zero, or `x: c(B, H, N2)`.
    public func makeState(batch: Int, x: [Complex<T>]? = nil) throws(SSMError) -> State {
        guard batch >= 1 else { throw SSMError.value(argument: "batch", expected: "a positive count, got \(batch)") }
        if let x, x.count != batch * channels * modes {
            throw SSMError.shape(argument: "state", expected: "(B, H, N2) = (\(batch), \(channels), \(modes)) complex", actual: [x.count])
        }
        return State(batch: batch, x: x ?? [Complex<T>](repeating: .zero, count: batch * channels * modes))
    }

    /// One step: u: (B, H) → y: (B, H), advancing `state`.
    @inlinable
    public func step(_ state: inout State, u: [T], y: inout [T]) throws(SSMError) {
        let count = state.batch * channels
        if u.count != count { throw SSMError.shape(argument: "u", expected: "(B, H) = (\(state.batch), \(channels))", actual: [u.count]) }
        if y.count != count { throw SSMError.shape(argument: "y", expected: "(B, H)", actual: [y.count]) }
        for row in 0 ..< count { y[row] = advance(&state.x, row, u[row]) }
    }

    /// Steps a whole sequence: u: (B, H, L) → y: (B, H, L), advancing `state` by L steps.
    @inlinable
    public func run(_ state: inout State, u: [T], y: inout [T], length L: Int) throws(SSMError) {
        let count = state.batch * channels
        if u.count != count * L { throw SSMError.shape(argument: "u", expected: "(B, H, L) = (\(state.batch), \(channels), \(L))", actual: [u.count]) }
        if y.count != count * L { throw SSMError.shape(argument: "y", expected: "(B, H, L)", actual: [y.count]) }
        for row in 0 ..< count {
            for t in 0 ..< L { y[row * L + t] = advance(&state.x, row, u[row * L + t]) }
        }
    }

    /// x[row] ← Ā x[row] + B̄ u; returns 2·Re(C · x[row]) + D u. `row` = b·H + h.
    @inlinable @inline(__always)
    func advance(_ x: inout [Complex<T>], _ row: Int, _ u: T) -> T {
        let h = row % channels
        var sum: T = 0
        for n in 0 ..< modes {
            let i = h * modes + n
            let xn = aBar[i] * x[row * modes + n] + bBar[i].multiplied(by: u)
            x[row * modes + n] = xn
            sum += c[i].real * xn.real - c[i].imaginary * xn.imaginary
        }
        return 2 * sum + (d?[h] ?? 0) * u
    }

    // MARK: state carry for convolution mode

    /// Adds the response to an initial state to a convolution-mode output: for the state x
    /// before step 0, y[b, h, t] += 2·Re Σ_n C_n Ā_n^{t+1} x[b, h, n] for t in 0 ..< L.
    /// With ``advance(_:u:length:)`` this lets convolution mode start from any state, so a long
    /// sequence can run in chunks. Powers are exact exponentials in Double every 64 steps.
    public func addStateResponse(_ state: State, length L: Int, y: inout [T]) throws(SSMError) {
        let count = state.batch * channels
        if y.count != count * L { throw SSMError.shape(argument: "y", expected: "(B, H, L) = (\(state.batch), \(channels), \(L))", actual: [y.count]) }
        for row in 0 ..< count {
            let h = row % channels
            for n in 0 ..< modes {
                let m = exactModes[h * modes + n]
                let w = complexDouble(c[h * modes + n]) * m.aBar * complexDouble(state.x[row * modes + n])
                forEachPower(of: m, length: L) { t, p in y[row * L + t] += T(2 * (w * p).real) }
            }
        }
    }

    /// Advances `state` over a whole input u: (B, H, L) without computing outputs:
    /// x ← Ā^L x + Σ_s Ā^{L−1−s} B̄ u_s, by Horner's rule in Double (backward stable for |Ā| ≤ 1).
    /// The state convolution mode hands to step mode (prefill, then decode) or to the next chunk.
    public func advance(_ state: inout State, u: [T], length L: Int) throws(SSMError) {
        let count = state.batch * channels
        if u.count != count * L { throw SSMError.shape(argument: "u", expected: "(B, H, L) = (\(state.batch), \(channels), \(L))", actual: [u.count]) }
        for row in 0 ..< count {
            let h = row % channels
            for n in 0 ..< modes {
                let m = exactModes[h * modes + n]
                let b = complexDouble(bBar[h * modes + n])
                var x = complexDouble(state.x[row * modes + n])
                for t in 0 ..< L { x = m.aBar * x + b.multiplied(by: Double(u[row * L + t])) }
                state.x[row * modes + n] = complexT(x, T.self)
            }
        }
    }

    /// Backward of ``addStateResponse(_:length:y:)``: accumulates into `dX: c(B, H, N2)` the
    /// gradient of ⟨dY, y⟩ with respect to the initial state (PyTorch's convention, d(re) + i·d(im)):
    /// dX_n = 2·conj(C_n Ā_n Σ_t dY_t Ā_n^t).
    public func addStateResponseBackward(dY: [T], batch: Int, length L: Int, dX: inout [Complex<T>]) throws(SSMError) {
        let count = batch * channels
        if dY.count != count * L { throw SSMError.shape(argument: "d_y", expected: "(B, H, L) = (\(batch), \(channels), \(L))", actual: [dY.count]) }
        if dX.count != count * modes { throw SSMError.shape(argument: "d_state", expected: "(B, H, N2) complex", actual: [dX.count]) }
        for row in 0 ..< count {
            let h = row % channels
            for n in 0 ..< modes {
                let m = exactModes[h * modes + n]
                var g = Complex<Double>.zero
                forEachPower(of: m, length: L) { t, p in g = g + p.multiplied(by: Double(dY[row * L + t])) }
                let grad = (complexDouble(c[h * modes + n]) * m.aBar * g).conjugate.multiplied(by: 2)
                dX[row * modes + n] = dX[row * modes + n] + complexT(grad, T.self)
            }
        }
    }

    /// Backward of ``advance(_:u:length:)``: given the gradient `dFinal: c(B, H, N2)` of the
    /// state after the chunk, accumulates the gradients of the state before it (conj(Ā^L)·dFinal)
    /// into `dInitial` and of the inputs (Re(conj(dFinal)·Ā^{L−1−s}·B̄), summed over modes) into
    /// `dU: (B, H, L)` — by the reverse recurrence g ← conj(Ā)·g.
    public func advanceBackward(dFinal: [Complex<T>], batch: Int, length L: Int,
                                dInitial: inout [Complex<T>], dU: inout [T]) throws(SSMError) {
        let count = batch * channels
        if dFinal.count != count * modes { throw SSMError.shape(argument: "d_state", expected: "(B, H, N2) complex", actual: [dFinal.count]) }
        if dInitial.count != count * modes { throw SSMError.shape(argument: "d_initial_state", expected: "(B, H, N2) complex", actual: [dInitial.count]) }
        if dU.count != count * L { throw SSMError.shape(argument: "d_u", expected: "(B, H, L)", actual: [dU.count]) }
        for row in 0 ..< count {
            let h = row % channels
            for n in 0 ..< modes {
                let m = exactModes[h * modes + n]
                let b = complexDouble(bBar[h * modes + n])
                // g_s = conj(Ā)^{L−1−s} dFinal, from s = L − 1 down to 0; dInitial = conj(Ā)^L dFinal.
                var g = complexDouble(dFinal[row * modes + n])
                for s in stride(from: L - 1, through: 0, by: -1) {
                    dU[row * L + s] += T((g.conjugate * b).real)
                    g = m.aBar.conjugate * g
                }
                dInitial[row * modes + n] = dInitial[row * modes + n] + complexT(g, T.self)
            }
        }
    }
}

/// Calls `body(t, Ā^t)` for t in 0 ..< L, in Double, restarting the powers from an exact
/// exponential every 64 steps (as ``S4DKernel`` does).
func forEachPower(of m: DiscreteMode<Double>, length L: Int, _ body: (Int, Complex<Double>) -> Void) {
    var l0 = 0
    while l0 < L {
        let end = min(L, l0 + 64)
        var p = anchoredPower(m.logABar, l0)
        for t in l0 ..< end {
            body(t, p)
            p = p * m.aBar
        }
        l0 = end
    }
}
