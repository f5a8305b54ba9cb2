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
        var aBar: [Complex<T>] = [], bBar: [Complex<T>] = []
        for h in 0 ..< channels {
            for n in 0 ..< modes {
                let (_, _, m) = kernel.mode(h, n, logDt: logDt, logAReal: logAReal, aImag: aImag)
                aBar.append(complexT(m.aBar, T.self))
                bBar.append(complexT(m.bBarScale * complexDouble(b?[h * modes + n] ?? Complex(1)), T.self))
            }
        }
        self.aBar = aBar
        self.bBar = bBar
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
}
