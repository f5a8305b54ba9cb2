import Testing
@testable import SSMKit

/// A seeded problem: delta small enough that softplus stays away from its threshold at 20
/// (where it has a kink), A negative as in Mamba.
func selectiveProblem<T: FFTScalar>(_ shape: SelectiveScanShape, seed: UInt64, d: Bool = true, z: Bool = true,
                                    bias: Bool = true, initial: Bool = true, as _: T.Type = T.self) -> SelectiveScanInputs<T> {
    var rng = SplitMix64(seed: seed)
    let s = shape
    func r(_ n: Int) -> [T] { (0 ..< n).map { _ in T(Double.random(in: -1 ..< 1, using: &rng)) } }
    let a = (0 ..< s.channels * s.state).map { _ in T(-Double.random(in: 0.1 ..< 2, using: &rng)) }
    return SelectiveScanInputs(
        u: r(s.sequenceCount), delta: r(s.sequenceCount).map { $0 * T(0.5) }, a: a,
        b: r(s.count(s.b)), c: r(s.count(s.c)), d: d ? r(s.channels) : nil, z: z ? r(s.sequenceCount) : nil,
        deltaBias: bias ? r(s.channels).map { $0 * T(0.1) } : nil, initialState: initial ? r(s.stateCount) : nil)
}

/// Copies of arrays at stable addresses, freed with the object (for the in-place APIs).
final class PinnedArrays {
    private var buffers: [UnsafeMutableBufferPointer<Double>] = []

    func pin(_ values: [Double]) -> UnsafeMutablePointer<Double> {
        let b = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(1, values.count))
        _ = b.initialize(from: values)
        buffers.append(b)
        return b.baseAddress!
    }

    deinit { for b in buffers { b.deallocate() } }
}

@Suite("Selective scan")
struct SelectiveScanTests {
    @Test("the vectorized exponential is within 2 ulp of libm, from underflow to overflow")
    func exponential() {
        func check<T: FFTScalar>(_: T.Type, range: ClosedRange<Double>) {
            var rng = SplitMix64(seed: 5)
            var x = (0 ..< 20_000).map { _ in T(Double.random(in: range, using: &rng)) }
            x += [0, -0.0, 1, -1, T(range.lowerBound), T(range.upperBound), T.ulpOfOne, -T.ulpOfOne]
            var e = [T](repeating: 0, count: x.count)
            T.vectorExp(x, &e, x.count)
            var worst = 0.0
            for (xi, ei) in zip(x, e) {
                let exact = T.exp(xi)
                if exact.isInfinite || exact == 0 { #expect(ei == exact, "exp(\(xi)) = \(ei), libm \(exact)"); continue }
                // Subnormal results have an absolute error of at most 2 of the smallest ulp.
                let ulp = max(exact.ulp, T.leastNonzeroMagnitude)
                worst = max(worst, Double(abs(ei - exact) / ulp))
            }
            #expect(worst <= 2, "\(T.self): worst error \(worst) ulp")
        }
        check(Float.self, range: -110 ... 95)
        check(Double.self, range: -750 ... 715)
    }

    @Test("NaN in, NaN out: the vector lanes of exp and of the GLU's gate as well as the tail; ±∞ to ∞ and 0")
    func exponentialOfNaN() {
        func check<T: FFTScalar>(_: T.Type) {
            // 37 values: two full vectors of 16 and a tail, NaN at every third place.
            let x = (0 ..< 37).map { i -> T in i % 3 == 0 ? .nan : i % 3 == 1 ? .infinity : -.infinity }
            var e = [T](repeating: 0, count: x.count)
            T.vectorExp(x, &e, x.count)
            for i in x.indices {
                let want: T = i % 3 == 0 ? .nan : i % 3 == 1 ? .infinity : 0
                #expect(e[i] == want || (e[i].isNaN && want.isNaN), "\(T.self) exp(\(x[i])) = \(e[i]) at \(i)")
            }
            let a = [T](repeating: 1, count: x.count), gates = (0 ..< 37).map { i -> T in i % 3 == 0 ? .nan : 0 }
            var y = a, gate = a
            gluForward(a, gates, residual: nil, y: &y, gate: &gate, count: x.count)
            for i in x.indices where i % 3 == 0 { #expect(y[i].isNaN && gate[i].isNaN, "\(T.self) GLU with a NaN gate at \(i)") }
        }
        check(Float.self)
        check(Double.self)
    }

    @Test("Double: fast scan = plain loop to 1e-12 across shapes, layouts and optional inputs",
          arguments: [
              (1, 3, 1, 1), (2, 4, 16, 7), (1, 6, 64, 33), (2, 4, 5, 100), (1, 2, 16, 1), (2, 2, 16, 57),
          ])
    func forwardMatchesReference(batch: Int, channels: Int, state: Int, length: Int) throws {
        let layouts: [(SelectiveProjection, SelectiveProjection)] = [
            (.inputDependent(groups: 1), .inputDependent(groups: 1)),
            (.inputDependent(groups: 2), .inputDependent(groups: 2)),
            (.timeInvariant, .inputDependent(groups: 1)),
            (.inputDependent(groups: 2), .timeInvariant),
        ]
        var seed: UInt64 = 100
        for (b, c) in layouts {
            if case let .inputDependent(g) = b, channels % g != 0 { continue }
            if case let .inputDependent(g) = c, channels % g != 0 { continue }
            let shape = try SelectiveScanShape(batch: batch, channels: channels, state: state, length: length, b: b, c: c)
            for optional in 0 ..< 4 {
                seed += 1
                let x: SelectiveScanInputs<Double> = selectiveProblem(shape, seed: seed, d: optional & 1 == 0, z: optional & 2 == 0,
                                                                      bias: optional < 2, initial: optional & 1 == 1)
                for softplus in [false, true] {
                    let scan = try SelectiveScan<Double>(shape: shape, deltaSoftplus: softplus)
                    let fast = try scan.forward(x), slow = try scan.reference(x)
                    #expect(relativeError(fast.out, slow.out) <= 1e-12, "out \(shape) \(optional) \(softplus)")
                    #expect(relativeError(fast.lastState, slow.lastState) <= 1e-12, "last_state \(shape)")
                }
            }
        }
    }

    @Test("token-major B and C (one (B·L, S) matrix, as Mamba's x_proj writes it): forward and backward, on arrays and in place, = the (B, G, N, L) layout",
          arguments: [(1, 1), (3, 1), (1, 2), (3, 2)])
    func tokenMajorLayout(batch: Int, threads: Int) throws {
        let (D, N, L, G, R) = (4, 3, 11, 2, 5)
        let S = R + 2 * G * N   // other columns first, then B's groups, then C's
        let packed = try SelectiveScanShape(batch: batch, channels: D, state: N, length: L,
                                            b: .inputDependent(groups: G), c: .inputDependent(groups: G))
        let x: SelectiveScanInputs<Double> = selectiveProblem(packed, seed: 61)
        var rng = SplitMix64(seed: 62)
        let dOut: [Double] = .random(packed.sequenceCount, &rng)
        // The same B and C in one token-major matrix, with noise in the other columns.
        var rows: [Double] = .random(batch * L * S, &rng)
        for b in 0 ..< batch {
            for g in 0 ..< G {
                for n in 0 ..< N {
                    for t in 0 ..< L {
                        rows[(b * L + t) * S + R + g * N + n] = x.b[((b * G + g) * N + n) * L + t]
                        rows[(b * L + t) * S + R + G * N + g * N + n] = x.c[((b * G + g) * N + n) * L + t]
                    }
                }
            }
        }
        let tokenMajor = try SelectiveScanShape(batch: batch, channels: D, state: N, length: L,
                                                b: .tokenMajor(groups: G, stride: S), c: .tokenMajor(groups: G, stride: S))
        let expected = try SelectiveScan<Double>(shape: packed, deltaSoftplus: true, threads: threads)
        let scan = try SelectiveScan<Double>(shape: tokenMajor, deltaSoftplus: true, threads: threads)
        let want = try expected.forward(x), wantG = try expected.backward(x, dOut: dOut)
        // Arrays: B and C as the spans of the matrix they start in.
        var y = x
        y.b = Array(rows[R ..< R + tokenMajor.count(tokenMajor.b)])
        y.c = Array(rows[(R + G * N)...])
        #expect(relativeError(try scan.forward(y).out, want.out) <= 1e-14)
        #expect(relativeError(try scan.reference(y).out, want.out) <= 1e-12)
        // In place, into a (B·L, S) gradient matrix whose other columns must stay as they were.
        let memory = PinnedArrays()
        let workspace = SelectiveScanWorkspace(scan, backward: true)
        let (sequence, states) = ([Double](repeating: 0, count: packed.sequenceCount), [Double](repeating: 0, count: packed.stateCount))
        let (out, last, du, dDelta, dz, dx0) = (memory.pin(sequence), memory.pin(states), memory.pin(sequence), memory.pin(sequence),
                                                memory.pin(sequence), memory.pin(states))
        let (dA, dD, dBias) = (memory.pin([Double](repeating: 0, count: D * N)), memory.pin([Double](repeating: 0, count: D)),
                               memory.pin([Double](repeating: 0, count: D)))
        var gradientRows = [Double](repeating: 7, count: rows.count)
        for b in 0 ..< batch { for t in 0 ..< L { for j in R ..< S { gradientRows[(b * L + t) * S + j] = 0 } } }
        let (m, dm) = (memory.pin(rows), memory.pin(gradientRows))
        let operands = SelectiveScanOperands(u: memory.pin(x.u), delta: memory.pin(x.delta), a: memory.pin(x.a), b: m + R, c: m + R + G * N,
                                             d: memory.pin(x.d!), z: memory.pin(x.z!), deltaBias: memory.pin(x.deltaBias!),
                                             initialState: memory.pin(x.initialState!))
        try scan.forward(operands, out: out, lastState: last, workspace: workspace)
        try scan.backward(operands, dOut: memory.pin(dOut), into: SelectiveScanGradientBuffers(
            u: du, delta: dDelta, z: dz, initialState: dx0, a: dA, b: dm + R, c: dm + R + G * N, d: dD, deltaBias: dBias), workspace: workspace)
        func read(_ p: UnsafeMutablePointer<Double>, _ count: Int) -> [Double] { Array(UnsafeBufferPointer(start: p, count: count)) }
        let dRows = read(dm, rows.count)
        #expect(relativeError(read(out, sequence.count), want.out) <= 1e-14 && relativeError(read(last, states.count), want.lastState) <= 1e-14)
        for (name, got, expected) in [("u", read(du, sequence.count), wantG.u), ("delta", read(dDelta, sequence.count), wantG.delta),
                                      ("z", read(dz, sequence.count), wantG.z!), ("x0", read(dx0, states.count), wantG.initialState!),
                                      ("A", read(dA, D * N), wantG.a), ("D", read(dD, D), wantG.d!), ("delta_bias", read(dBias, D), wantG.deltaBias!)] {
            #expect(relativeError(got, expected) <= 1e-13, "d_\(name)")
        }
        var dB = [Double](repeating: 0, count: x.b.count), dC = dB
        for b in 0 ..< batch {
            for t in 0 ..< L {
                #expect(dRows[(b * L + t) * S ..< (b * L + t) * S + R].allSatisfy { $0 == 7 }, "other columns untouched")
                for g in 0 ..< G {
                    for n in 0 ..< N {
                        dB[((b * G + g) * N + n) * L + t] = dRows[(b * L + t) * S + R + g * N + n]
                        dC[((b * G + g) * N + n) * L + t] = dRows[(b * L + t) * S + R + G * N + g * N + n]
                    }
                }
            }
        }
        #expect(relativeError(dB, wantG.b) <= 1e-13 && relativeError(dC, wantG.c) <= 1e-13)
        // The in-place form refuses the (B, G, N, L) layout and a workspace of another scan.
        #expect(throws: SSMError.self) {
            try expected.forward(operands, out: out, lastState: nil, workspace: SelectiveScanWorkspace(expected, backward: false))
        }
        let other = try SelectiveScan<Double>(shape: tokenMajor, deltaSoftplus: true, threads: threads, chunkLength: 3)
        #expect(throws: SSMError.self) { try other.forward(operands, out: out, lastState: nil, workspace: workspace) }
    }

    @Test("Float: fast scan vs the Double plain loop, Mamba's shape, L = 4096")
    func floatAccuracy() throws {
        let shape = try SelectiveScanShape(batch: 1, channels: 8, state: 16, length: 4096)
        let x64: SelectiveScanInputs<Double> = selectiveProblem(shape, seed: 7)
        let x32 = SelectiveScanInputs<Float>(
            u: x64.u.map(Float.init), delta: x64.delta.map(Float.init), a: x64.a.map(Float.init), b: x64.b.map(Float.init),
            c: x64.c.map(Float.init), d: x64.d?.map(Float.init), z: x64.z?.map(Float.init),
            deltaBias: x64.deltaBias?.map(Float.init), initialState: x64.initialState?.map(Float.init))
        let fast = try SelectiveScan<Float>(shape: shape, deltaSoftplus: true).forward(x32)
        let exact = try SelectiveScan<Double>(shape: shape, deltaSoftplus: true).reference(x64)
        #expect(relativeError(fast.out, exact.out) <= 1e-5)
        #expect(relativeError(fast.lastState, exact.lastState) <= 1e-5)
    }

    @Test("scanning in two parts with the last state carried = one pass")
    func stateCarry() throws {
        let (L1, L2) = (37, 28)
        let whole = try SelectiveScanShape(batch: 2, channels: 4, state: 16, length: L1 + L2, b: .timeInvariant)
        let x: SelectiveScanInputs<Double> = selectiveProblem(whole, seed: 9)
        let one = try SelectiveScan<Double>(shape: whole, deltaSoftplus: true).forward(x)
        func part(_ start: Int, _ length: Int, _ initial: [Double]?) throws -> (out: [Double], lastState: [Double]) {
            let shape = try SelectiveScanShape(batch: 2, channels: 4, state: 16, length: length, b: .timeInvariant)
            // Steps [start, start + length) of each row of a (rows, L1 + L2) array.
            func steps(_ v: [Double], rows: Int) -> [Double] {
                var out = [Double]()
                for row in 0 ..< rows {
                    let first = row * (L1 + L2) + start
                    out += v[first ..< first + length]
                }
                return out
            }
            func slice(_ v: [Double]) -> [Double] { steps(v, rows: 8) }
            func sliceC(_ v: [Double]) -> [Double] { steps(v, rows: 2 * 16) }
            let xs = SelectiveScanInputs(u: slice(x.u), delta: slice(x.delta), a: x.a, b: x.b, c: sliceC(x.c), d: x.d,
                                         z: x.z.map(slice), deltaBias: x.deltaBias, initialState: initial)
            return try SelectiveScan<Double>(shape: shape, deltaSoftplus: true).forward(xs)
        }
        let first = try part(0, L1, x.initialState), second = try part(L1, L2, first.lastState)
        var joined = [Double]()
        for row in 0 ..< 8 { joined += first.out[(row * L1) ..< ((row + 1) * L1)] + second.out[(row * L2) ..< ((row + 1) * L2)] }
        #expect(relativeError(joined, one.out) <= 1e-13)
        #expect(relativeError(second.lastState, one.lastState) <= 1e-13)
    }

    @Test("backward: every gradient against central finite differences in Double",
          arguments: [
              (SelectiveProjection.inputDependent(groups: 2), SelectiveProjection.inputDependent(groups: 1), 1, true),
              (.timeInvariant, .inputDependent(groups: 2), 4, true),
              (.inputDependent(groups: 1), .timeInvariant, 64, false),
          ])
    func backwardMatchesFiniteDifferences(b: SelectiveProjection, c: SelectiveProjection, chunk: Int, softplus: Bool) throws {
        let shape = try SelectiveScanShape(batch: 2, channels: 4, state: 3, length: 9, b: b, c: c)
        let x: SelectiveScanInputs<Double> = selectiveProblem(shape, seed: 21)
        var rng = SplitMix64(seed: 22)
        let dOut: [Double] = .random(shape.sequenceCount, &rng)
        let scan = try SelectiveScan<Double>(shape: shape, deltaSoftplus: softplus, chunkLength: chunk)
        let g = try scan.backward(x, dOut: dOut)
        func loss(_ x: SelectiveScanInputs<Double>) throws -> Double { dot(dOut, try scan.forward(x).out) }
        let fields: [(String, WritableKeyPath<SelectiveScanInputs<Double>, [Double]>, [Double])] = [
            ("u", \.u, g.u), ("delta", \.delta, g.delta), ("A", \.a, g.a), ("B", \.b, g.b), ("C", \.c, g.c),
        ]
        let optionals: [(String, WritableKeyPath<SelectiveScanInputs<Double>, [Double]?>, [Double]?)] = [
            ("D", \.d, g.d), ("z", \.z, g.z), ("delta_bias", \.deltaBias, g.deltaBias), ("initial_state", \.initialState, g.initialState),
        ]
        let eps = 1e-6
        func check(_ name: String, _ analytic: [Double], _ bump: (inout SelectiveScanInputs<Double>, Int, Double) -> Void) throws {
            let scale = max(1e-3, maxAbs(analytic))
            for i in analytic.indices {
                var up = x, down = x
                bump(&up, i, eps); bump(&down, i, -eps)
                let fd = (try loss(up) - loss(down)) / (2 * eps)
                #expect(abs(fd - analytic[i]) <= 1e-7 * scale, "d_\(name)[\(i)]: \(analytic[i]) vs \(fd)")
            }
        }
        for (name, path, analytic) in fields {
            #expect(analytic.count == x[keyPath: path].count, "d_\(name) count")
            try check(name, analytic) { $0[keyPath: path][$1] += $2 }
        }
        for (name, path, analytic) in optionals {
            let analytic = try #require(analytic, "d_\(name) present")
            try check(name, analytic) { $0[keyPath: path]![$1] += $2 }
        }
    }

    @Test("backward does not depend on the chunk length or the thread count beyond rounding")
    func backwardInvariance() throws {
        let shape = try SelectiveScanShape(batch: 1, channels: 6, state: 16, length: 333, c: .inputDependent(groups: 2))
        let x: SelectiveScanInputs<Double> = selectiveProblem(shape, seed: 31)
        var rng = SplitMix64(seed: 32)
        let dOut: [Double] = .random(shape.sequenceCount, &rng)
        let base = try SelectiveScan<Double>(shape: shape, deltaSoftplus: true, threads: 1, chunkLength: 333).backward(x, dOut: dOut)
        for (threads, chunk) in [(1, 1), (2, 7), (3, 64), (2, 1000)] {
            let g = try SelectiveScan<Double>(shape: shape, deltaSoftplus: true, threads: threads, chunkLength: chunk).backward(x, dOut: dOut)
            for (name, a, b) in [("u", g.u, base.u), ("delta", g.delta, base.delta), ("A", g.a, base.a), ("B", g.b, base.b),
                                 ("C", g.c, base.c), ("z", g.z!, base.z!), ("x0", g.initialState!, base.initialState!)] {
                #expect(relativeError(a, b) <= 1e-13, "d_\(name), threads \(threads), chunk \(chunk)")
            }
        }
    }

    @Test("bad input: wrong sizes, non-finite values and impossible groups give typed errors")
    func badInput() throws {
        #expect(throws: SSMError.value(argument: "B", expected: "a group count that divides D = 6, got 4")) {
            try SelectiveScanShape(batch: 1, channels: 6, state: 4, length: 8, b: .inputDependent(groups: 4))
        }
        #expect(throws: SSMError.self) { try SelectiveScanShape(batch: 1, channels: 6, state: 0, length: 8) }
        #expect(throws: SSMError.value(argument: "state", expected: "N ≤ 4096, got 100000")) {
            try SelectiveScanShape(batch: 1, channels: 1, state: 100_000, length: 8)
        }
        let shape = try SelectiveScanShape(batch: 1, channels: 2, state: 4, length: 8)
        let scan = try SelectiveScan<Double>(shape: shape)
        var x: SelectiveScanInputs<Double> = selectiveProblem(shape, seed: 1)
        x.c.removeLast()
        #expect(throws: SSMError.shape(argument: "C", expected: "(B, G, N, L) = (1, 1, 4, 8)", actual: [31])) { try scan.forward(x) }
        x = selectiveProblem(shape, seed: 1)
        x.delta[3] = .nan
        #expect(throws: SSMError.value(argument: "delta", expected: "finite values (element 3 is nan)")) { try scan.forward(x) }
        x = selectiveProblem(shape, seed: 1)
        #expect(throws: SSMError.self) { try scan.backward(x, dOut: [1, 2]) }
        #expect(throws: SSMError.self) { try SelectiveScan<Double>(shape: shape, chunkLength: 0) }
    }
}

@Suite("Selective state update (decoding)")
struct SelectiveStateUpdateTests {
    @Test("one step = the plain scan loop at L = 1 from the same state, for every optional input, groups, N with and without a fixed-size loop, blocks of channels, and rows split over two threads in the middle of a batch (3 × 300)",
          arguments: [(1, 3, 1, 1), (2, 4, 16, 2), (2, 6, 5, 3), (1, 600, 16, 1), (2, 130, 64, 2), (3, 70, 8, 1), (3, 300, 16, 3)])
    func matchesScan(batch: Int, channels: Int, state: Int, groups: Int) throws {
        let shape = try SelectiveScanShape(batch: batch, channels: channels, state: state, length: 1, b: .inputDependent(groups: groups),
                                           c: .inputDependent(groups: groups))
        for optional in 0 ..< 4 {
            let x: SelectiveScanInputs<Double> = selectiveProblem(shape, seed: UInt64(40 + optional), d: optional & 1 == 0,
                                                                  z: optional & 2 == 0, bias: optional < 2, initial: true)
            for softplus in [false, true] {
                let want = try SelectiveScan<Double>(shape: shape, deltaSoftplus: softplus).reference(x)
                let update = try SelectiveStateUpdate<Double>(batch: batch, channels: channels, state: state, groups: groups,
                                                              deltaSoftplus: softplus)
                var stateArray = x.initialState!, out = [Double](repeating: 0, count: batch * channels)
                try update(state: &stateArray, u: x.u, dt: x.delta, a: x.a, b: x.b, c: x.c, d: x.d, z: x.z, dtBias: x.deltaBias, out: &out)
                #expect(relativeError(out, want.out) <= 1e-12, "out \(optional) \(softplus)")
                #expect(relativeError(stateArray, want.lastState) <= 1e-12, "state \(optional) \(softplus)")
                // In place, B and C as token-major rows (one row of stride 2·G·N + 3 per
                // batch, B then C), on two threads.
                let (G, N) = (groups, state), stride = 2 * groups * state + 3
                var rows = [Double](repeating: .nan, count: batch * stride)
                for b in 0 ..< batch {
                    for i in 0 ..< G * N {
                        rows[b * stride + i] = x.b[b * G * N + i]
                        rows[b * stride + G * N + i] = x.c[b * G * N + i]
                    }
                }
                let pinned = PinnedArrays()
                let inPlace = try SelectiveStateUpdate<Double>(batch: batch, channels: channels, state: state, groups: groups,
                                                               rowStride: stride, deltaSoftplus: softplus)
                let states = pinned.pin(x.initialState!), outs = pinned.pin(out.map { _ in 0 }), r = pinned.pin(rows)
                let finite = inPlace(state: states, SelectiveScanOperands(
                    u: pinned.pin(x.u), delta: pinned.pin(x.delta), a: pinned.pin(x.a), b: r, c: r + G * N, d: x.d.map { pinned.pin($0) },
                    z: x.z.map { pinned.pin($0) }, deltaBias: x.deltaBias.map { pinned.pin($0) }), out: outs, threads: 2)
                #expect(finite)
                #expect(Array(UnsafeBufferPointer(start: outs, count: out.count)) == out, "in place \(optional) \(softplus)")
                #expect(Array(UnsafeBufferPointer(start: states, count: stateArray.count)) == stateArray)
            }
        }
    }

    @Test("a non-finite input: the array form throws naming it and leaves the state alone; the in-place form reports it")
    func nonFinite() throws {
        let shape = try SelectiveScanShape(batch: 2, channels: 600, state: 16, length: 1)
        var x: SelectiveScanInputs<Double> = selectiveProblem(shape, seed: 7)
        x.u[1000] = .nan
        let update = try SelectiveStateUpdate<Double>(batch: 2, channels: 600, state: 16)
        var state = x.initialState!, out = [Double](repeating: 0, count: 1200)
        #expect(throws: SSMError.self) {
            try update(state: &state, u: x.u, dt: x.delta, a: x.a, b: x.b, c: x.c, d: x.d, z: x.z, dtBias: x.deltaBias, out: &out)
        }
        #expect(state == x.initialState!)
        let pinned = PinnedArrays()
        let finite = update(state: pinned.pin(state), SelectiveScanOperands(u: pinned.pin(x.u), delta: pinned.pin(x.delta), a: pinned.pin(x.a),
                                                                             b: pinned.pin(x.b), c: pinned.pin(x.c)),
                            out: pinned.pin(out), threads: 2)
        #expect(!finite)
    }
}
