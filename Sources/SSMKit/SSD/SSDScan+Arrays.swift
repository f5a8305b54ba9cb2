extension SSDScan {
    // MARK: Arrays in the packed layouts

    /// out (B, L, H, P) and the final states (B, H, P, N).
    /// - Throws: ``SSMError`` naming an input of the wrong size or with a non-finite value.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ inputs: SSDInputs<T>) throws(SSMError) -> (out: [T], finalStates: [T]) {
        try check(inputs)
        let workspace = SSDWorkspace(self, backward: false)
        return try run(inputs, workspace)
    }

    /// The gradients of Σ dOut ⊙ out + Σ dFinalStates ⊙ final_states (dFinalStates zero when
    /// nil) with respect to every input given.
    /// - Throws: ``SSMError`` naming an input or gradient of the wrong size or non-finite.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(_ inputs: SSDInputs<T>, dOut: [T], dFinalStates: [T]? = nil) throws(SSMError) -> SSDGradients<T> {
        try check(inputs)
        let s = shape
        try checkValues(dOut, "d_out", s.sequenceCount, "(B, L, H, P)", finite: false)
        if let dFinalStates { try checkValues(dFinalStates, "d_final_states", s.stateCount, "(B, H, P, N)", finite: false) }
        let workspace = SSDWorkspace(self, backward: true)
        _ = try run(inputs, workspace)
        let (H, P, G, N) = (s.heads, s.headDimension, s.groups, s.state)
        // Gradient buffers owned by a workspace for the call, copied out at the end.
        let owner = Workspace<T>()
        let gx = owner.zeros(s.sequenceCount), gdt = owner.zeros(s.timeStepCount), ga = owner.zeros(H)
        let gb = owner.zeros(s.projectionCount), gc = owner.zeros(s.projectionCount)
        let gd = inputs.d.map { owner.zeros($0.count) }, gBias = inputs.dtBias.map { _ in owner.zeros(H) }
        let gInitial = inputs.initialStates.map { _ in owner.zeros(s.stateCount) }
        let buffers = SSDGradientBuffers(x: gx, xStride: H * P, dt: gdt, dtStride: H, a: ga, b: gb, bStride: G * N, c: gc, cStride: G * N,
                                         d: gd, dtBias: gBias, initialStates: gInitial)
        var failure: SSMError?
        withBaseAddresses([inputs.x, inputs.dt, inputs.a, inputs.b, inputs.c, inputs.d, inputs.dtBias, inputs.initialStates, dOut, dFinalStates]) { p in
            do throws(SSMError) {
                try self.backwardChunks(operands(p, inputs), dOut: p[8]!, dOutStride: H * P, dFinalStates: p[9], into: buffers, workspace: workspace)
            } catch { failure = error }
        }
        if let failure {
            try checkValues(dOut, "d_out", s.sequenceCount, "(B, L, H, P)", finite: true)
            if let dFinalStates { try checkValues(dFinalStates, "d_final_states", s.stateCount, "(B, H, P, N)", finite: true) }
            throw failure
        }
        return SSDGradients(x: array(gx, s.sequenceCount), dt: array(gdt, s.timeStepCount), a: array(ga, H),
                            b: array(gb, s.projectionCount), c: array(gc, s.projectionCount), d: gd.map { array($0, inputs.d!.count) },
                            dtBias: gBias.map { array($0, H) }, initialStates: gInitial.map { array($0, s.stateCount) })
    }

    /// Forward on checked arrays into `workspace`.
    private func run(_ inputs: SSDInputs<T>, _ workspace: SSDWorkspace<T>) throws(SSMError) -> (out: [T], finalStates: [T]) {
        let s = shape
        var out = [T](repeating: 0, count: s.sequenceCount), final = [T](repeating: 0, count: s.stateCount)
        var failure: SSMError?
        withBaseAddresses([inputs.x, inputs.dt, inputs.a, inputs.b, inputs.c, inputs.d, inputs.dtBias, inputs.initialStates]) { p in
            out.withUnsafeMutableBufferPointer { out in
                final.withUnsafeMutableBufferPointer { final in
                    do throws(SSMError) {
                        try forwardChunks(operands(p, inputs), out: out.baseAddress!, outStride: s.heads * s.headDimension,
                                    finalStates: final.baseAddress!, workspace: workspace)
                    } catch { failure = error }
                }
            }
        }
        if let failure { throw failure }
        return (out, final)
    }

    /// Packed operands from the base addresses of (x, dt, A, B, C, D, dt_bias, initial_states).
    private func operands(_ p: [UnsafePointer<T>?], _ inputs: SSDInputs<T>) -> SSDOperands<T> {
        let s = shape
        return SSDOperands(x: p[0]!, xStride: s.heads * s.headDimension, dt: p[1]!, dtStride: s.heads, a: p[2]!,
                           b: p[3]!, bStride: s.groups * s.state, c: p[4]!, cStride: s.groups * s.state, d: p[5],
                           dHasHeadDimension: (inputs.d?.count ?? 0) == s.heads * s.headDimension && s.headDimension > 1,
                           dtBias: p[6], initialStates: p[7])
    }

    /// Throws unless every input has its packed size and finite values; D may be (H) or (H, P).
    public func check(_ x: SSDInputs<T>) throws(SSMError) {
        let s = shape
        let (B, L, H, P, G, N) = (s.batch, s.length, s.heads, s.headDimension, s.groups, s.state)
        try checkValues(x.x, "x", s.sequenceCount, "(B, L, H, P) = (\(B), \(L), \(H), \(P))", finite: true)
        try checkValues(x.dt, "dt", s.timeStepCount, "(B, L, H) = (\(B), \(L), \(H))", finite: true)
        try checkValues(x.a, "A", H, "(H) = (\(H))", finite: true)
        try checkValues(x.b, "B", s.projectionCount, "(B, L, G, N) = (\(B), \(L), \(G), \(N))", finite: true)
        try checkValues(x.c, "C", s.projectionCount, "(B, L, G, N) = (\(B), \(L), \(G), \(N))", finite: true)
        if let d = x.d {
            guard d.count == H || d.count == H * P else { throw SSMError.shape(argument: "D", expected: "(H) = (\(H)) or (H, P) = (\(H), \(P))", actual: [d.count]) }
            try checkValues(d, "D", d.count, "", finite: true)
        }
        if let bias = x.dtBias { try checkValues(bias, "dt_bias", H, "(H) = (\(H))", finite: true) }
        if let initial = x.initialStates { try checkValues(initial, "initial_states", s.stateCount, "(B, H, P, N) = (\(B), \(H), \(P), \(N))", finite: true) }
    }

    // MARK: The plain loop

    /// The recurrence token by token, with libm's exp and log1p: the definition the chunked
    /// forward, its backward (through finite differences) and the step are tested against.
    /// Same inputs and outputs as ``forward(_:)``.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func reference(_ x: SSDInputs<T>) throws(SSMError) -> (out: [T], finalStates: [T]) {
        try check(x)
        let s = shape
        let (L, H, P, G, N) = (s.length, s.heads, s.headDimension, s.groups, s.state)
        var out = [T](repeating: 0, count: s.sequenceCount)
        var final = [T](repeating: 0, count: s.stateCount)
        let perChannel = (x.d?.count ?? 0) == H * P && P > 1
        for b in 0 ..< s.batch {
            for h in 0 ..< H {
                let g = h / s.headsPerGroup
                var state = (0 ..< P * N).map { x.initialStates?[(b * H + h) * P * N + $0] ?? 0 }
                for t in 0 ..< L {
                    let token = b * L + t
                    let dt = processed(x.dt[token * H + h] + (x.dtBias?[h] ?? 0))
                    let decay = T.exp(dt * x.a[h])
                    for p in 0 ..< P {
                        let xv = x.x[(token * H + h) * P + p]
                        var y: T = 0
                        for n in 0 ..< N {
                            state[p * N + n] = decay * state[p * N + n] + dt * xv * x.b[(token * G + g) * N + n]
                            y += state[p * N + n] * x.c[(token * G + g) * N + n]
                        }
                        let d = x.d.map { perChannel ? $0[h * P + p] : $0[h] } ?? 0
                        out[(token * H + h) * P + p] = y + d * xv
                    }
                }
                for i in 0 ..< P * N { final[(b * H + h) * P * N + i] = state[i] }
            }
        }
        return (out, final)
    }
}
