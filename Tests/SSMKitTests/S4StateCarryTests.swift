import Testing
@testable import SSMKit

@Suite("S4 state carry")
struct S4StateCarryTests {
    let B = 2, C = 2, H = 2, N2 = 4, R = 2
    let L1 = 123, L2 = 177

    /// The model, an input of L1 + L2 steps, D, and the one-pass convolution-mode output.
    func setUp(_ mode: S4Recurrence.StepMode) throws -> (S4Recurrence, [Double], [Double], [Double], [Double], S4Kernel<Double>) {
        let L = L1 + L2
        let p = TestS4Parameters(copies: C, channels: H, ssms: H, modes: N2, rank: R, seed: 61)
        let kernel = try S4Kernel<Double>(copies: C, channels: H, ssms: H, modes: N2, rank: R)
        var rng = SplitMix64(seed: 62)
        let u: [Double] = .random(B * H * L, &rng), d: [Double] = .random(C * H, &rng)
        let k = try p.kernel(kernel, L)
        var y = [Double](repeating: 0, count: B * C * H * L)
        try FFTConvolution<Double>(shape: ConvolutionShape(batch: B, channels: H, length: L, kernelCopies: C), effort: .estimate)
            .forward(u: u, kernel: k, skip: d, y: &y)
        let r = try S4Recurrence(kernel: kernel, mode: mode, length: L, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag,
                                 b: p.b, p: p.p, cTilde: p.c, skip: d)
        return (r, u, d, k, y, kernel)
    }

    /// Steps [start, start + n) of every row of a (rows, L) array.
    func steps(_ v: [Double], rows: Int, length L: Int, from start: Int, count n: Int) -> [Double] {
        var out = [Double]()
        for row in 0 ..< rows { out += v[row * L + start ..< row * L + start + n] }
        return out
    }

    @Test("chunked convolution mode with the state carried = one pass; prefill then step = one pass",
          arguments: S4Recurrence.StepMode.allCases)
    func chunksEqualOnePass(_ mode: S4Recurrence.StepMode) throws {
        let (r, u, d, k, y, _) = try setUp(mode)
        let L = L1 + L2
        let u1 = steps(u, rows: B * H, length: L, from: 0, count: L1), u2 = steps(u, rows: B * H, length: L, from: L1, count: L2)
        let yOne2 = steps(y, rows: B * C * H, length: L, from: L1, count: L2)
        // Chunk 2 by convolution: its kernel is the first L2 taps of the attuned kernel.
        let k2 = steps(k, rows: C * H, length: L, from: 0, count: L2)
        var y2 = [Double](repeating: 0, count: B * C * H * L2)
        try FFTConvolution<Double>(shape: ConvolutionShape(batch: B, channels: H, length: L2, kernelCopies: C), effort: .estimate)
            .forward(u: u2, kernel: k2, skip: d, y: &y2)
        var state = try r.makeState(batch: B)
        try r.advance(&state, u: u1, length: L1)
        try r.addStateResponse(state, length: L2, y: &y2)
        #expect(relativeError(y2, yOne2) <= 1e-11, "\(mode): chunked")
        // Prefill by advancing, then decode with the fast engine from the carried state.
        let engine = StepEngine(r, as: Double.self)
        var s = StepEngine<Double>.State(state)
        var yStep = [Double](repeating: 0, count: B * C * H * L2)
        try engine.run(&s, u: u2, y: &yStep, length: L2)
        #expect(relativeError(yStep, yOne2) <= 1e-11, "\(mode): prefill then step")
    }

    @Test("gradients through a carried state (initial state, chunk inputs) match central differences",
          arguments: S4Recurrence.StepMode.allCases)
    func gradientThroughState(_ mode: S4Recurrence.StepMode) throws {
        let (r, _, _, _, _, _) = try setUp(mode)
        let (La, Lb) = (20, 15)
        var rng = SplitMix64(seed: 63)
        let n = try r.makeState(batch: B).x[0].count
        var x0 = try r.makeState(batch: B)
        for row in x0.x.indices { x0.x[row] = (0 ..< n).map { _ in Complex(Double.random(in: -1 ..< 1, using: &rng), Double.random(in: -1 ..< 1, using: &rng)) } }
        let u1: [Double] = .random(B * H * La, &rng), dY: [Double] = .random(B * C * H * Lb, &rng)
        func loss(_ x0: S4Recurrence.State, _ u1: [Double]) throws -> Double {
            var s = x0
            try r.advance(&s, u: u1, length: La)
            var y = [Double](repeating: 0, count: B * C * H * Lb)
            try r.addStateResponse(s, length: Lb, y: &y)
            return dot(dY, y)
        }
        var dX1 = try r.makeState(batch: B)
        try r.addStateResponseBackward(dY: dY, length: Lb, dState: &dX1)
        var dX0 = try r.makeState(batch: B), dU1 = [Double](repeating: 0, count: u1.count)
        try r.advanceBackward(dFinal: dX1, length: La, dInitial: &dX0, dU: &dU1)
        // The loss is linear in (x0, u1): central differences are exact up to rounding.
        let eps = 1e-4
        let scale = max(1, maxAbs(dU1))
        for i in [0, u1.count / 2, u1.count - 1] {
            var up = u1, down = u1
            up[i] += eps; down[i] -= eps
            let fd = (try loss(x0, up) - loss(x0, down)) / (2 * eps)
            #expect(abs(fd - dU1[i]) <= 1e-8 * scale, "\(mode) d_u[\(i)]: \(dU1[i]) vs \(fd)")
        }
        for (row, k) in [(0, 0), (B * H - 1, n - 1)] {
            for (part, bump) in [("re", Complex<Double>(eps, 0)), ("im", Complex<Double>(0, eps))] {
                var up = x0, down = x0
                up.x[row][k] = up.x[row][k] + bump
                down.x[row][k] = down.x[row][k] - bump
                let fd = (try loss(up, u1) - loss(down, u1)) / (2 * eps)
                let analytic = part == "re" ? dX0.x[row][k].real : dX0.x[row][k].imaginary
                #expect(abs(fd - analytic) <= 1e-8 * scale, "\(mode) d_state[\(row)][\(k)].\(part): \(analytic) vs \(fd)")
            }
        }
    }
}
