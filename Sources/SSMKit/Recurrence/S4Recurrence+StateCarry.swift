import ComplexModule

/// State carry for S4 convolution mode, as ``S4DRecurrence`` has it: a long sequence runs in
/// chunks (convolution per chunk, state carried between them), or convolution mode prefills a
/// state that step mode then decodes from. The state is the step mode's own (see
/// ``S4Recurrence/State``), so it can go to ``StepEngine`` as it is.
///
/// Forward: the response to a state and the advance over a chunk are stepped with the same
/// operators as ``S4Recurrence/run(_:u:y:length:)``, O(L) steps per row. Backward: both maps
/// are linear in (state, input); their gradients are taken exactly from the responses to the
/// 2n real basis directions of a row's state (2n + 1 runs of L steps per row: fine once per
/// chunk, not meant for every training step).
extension S4Recurrence {
    /// Adds the response to an initial state to a convolution-mode output:
    /// y[b, c, h, t] += C x_t (Re, or 2·Re over a half state) with x_t = Ā^{t+1} x_0, for t < L.
    public func addStateResponse<T: FFTScalar>(_ state: State, length L: Int, y: inout [T]) throws(SSMError) {
        let (B, C, H) = (state.batch, copies, channels)
        if y.count != B * C * H * L { throw SSMError.shape(argument: "y", expected: "(B, C, H, L) = (\(B), \(C), \(H), \(L))", actual: [y.count]) }
        for b in 0 ..< B {
            for h in 0 ..< H {
                var x = state.x[b * H + h]
                for t in 0 ..< L {
                    advance(&x, h, 0)
                    for c in 0 ..< C { y[((b * C + c) * H + h) * L + t] += T(output(c, h, x)) }
                }
            }
        }
    }

    /// Advances `state` over u: (B, H, L) without computing outputs: the state convolution
    /// mode hands to the next chunk or to step mode.
    public func advance<T: FFTScalar>(_ state: inout State, u: [T], length L: Int) throws(SSMError) {
        let (B, H) = (state.batch, channels)
        if u.count != B * H * L { throw SSMError.shape(argument: "u", expected: "(B, H, L) = (\(B), \(H), \(L))", actual: [u.count]) }
        for row in 0 ..< B * H {
            for t in 0 ..< L { advance(&state.x[row], row % H, Double(u[row * L + t])) }
        }
    }

    /// Backward of ``addStateResponse(_:length:y:)``: adds to `dState` the gradient of
    /// ⟨dY, y⟩ with respect to the state (PyTorch's convention: d(re) + i·d(im)).
    public func addStateResponseBackward<T: FFTScalar>(dY: [T], length L: Int, dState: inout State) throws(SSMError) {
        let (B, C, H) = (dState.batch, copies, channels)
        if dY.count != B * C * H * L { throw SSMError.shape(argument: "dY", expected: "(B, C, H, L) = (\(B), \(C), \(H), \(L))", actual: [dY.count]) }
        for b in 0 ..< B {
            for h in 0 ..< H {
                let n = dState.x[b * H + h].count
                for k in 0 ..< n {
                    for unit in [Complex<Double>(1, 0), Complex<Double>(0, 1)] {
                        var x = [Complex<Double>](repeating: .zero, count: n)
                        x[k] = unit
                        var g = 0.0
                        for t in 0 ..< L {
                            advance(&x, h, 0)
                            for c in 0 ..< C { g += Double(dY[((b * C + c) * H + h) * L + t]) * output(c, h, x) }
                        }
                        dState.x[b * H + h][k] = dState.x[b * H + h][k] + unit * Complex(g)
                    }
                }
            }
        }
    }

    /// Backward of ``advance(_:u:length:)``: from the gradient of the final state, adds the
    /// gradients of the initial state (to `dInitial`) and of u: (B, H, L) (to `dU`).
    public func advanceBackward<T: FFTScalar>(dFinal: State, length L: Int, dInitial: inout State, dU: inout [T]) throws(SSMError) {
        let (B, H) = (dFinal.batch, channels)
        guard dInitial.batch == B, dInitial.x.count == dFinal.x.count else {
            throw SSMError.shape(argument: "dInitial", expected: "a state for batch \(B)", actual: [dInitial.batch])
        }
        if dU.count != B * H * L { throw SSMError.shape(argument: "dU", expected: "(B, H, L) = (\(B), \(H), \(L))", actual: [dU.count]) }
        // ⟨g, x⟩ in the real inner product of the gradient convention.
        func pair(_ g: [Complex<Double>], _ x: [Complex<Double>]) -> Double {
            zip(g, x).reduce(0) { $0 + $1.0.real * $1.1.real + $1.0.imaginary * $1.1.imaginary }
        }
        for row in 0 ..< B * H {
            let h = row % H, g = dFinal.x[row], n = g.count
            // dU[t] = ⟨g, Ā^{L−1−t} B̄⟩: the responses to a unit input at step 0, read backwards.
            var x = [Complex<Double>](repeating: .zero, count: n)
            advance(&x, h, 1)
            for s in 0 ..< L {
                if s > 0 { advance(&x, h, 0) }
                dU[row * L + (L - 1 - s)] += T(pair(g, x))
            }
            // dInitial = Σ_k ⟨g, Ā^L e_k⟩ e_k over the 2n real directions.
            for k in 0 ..< n {
                for unit in [Complex<Double>(1, 0), Complex<Double>(0, 1)] {
                    var e = [Complex<Double>](repeating: .zero, count: n)
                    e[k] = unit
                    for _ in 0 ..< L { advance(&e, h, 0) }
                    dInitial.x[row][k] = dInitial.x[row][k] + unit * Complex(pair(g, e))
                }
            }
        }
    }
}

extension StepEngine.State {
    /// The state of ``S4Recurrence`` (same step mode) rounded to T, for decoding with the engine.
    public init(_ s: S4Recurrence.State) {
        batch = s.batch
        xRe = s.x.flatMap { $0.map { T($0.real) } }
        xIm = s.x.flatMap { $0.map { T($0.imaginary) } }
    }

    /// The state of ``S4DRecurrence``.
    public init(_ s: S4DRecurrence<T>.State) {
        batch = s.batch
        xRe = s.x.map(\.real)
        xIm = s.x.map(\.imaginary)
    }
}
