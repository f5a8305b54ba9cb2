import Testing
@testable import SSMKit

/// A seeded SSD problem: A negative, raw dt around softplus⁻¹ of 0.001 … 0.2 (or positive
/// steps when there is no softplus), x, B, C, D, dt_bias and the initial states in [−1, 1).
func ssdProblem<T: FFTScalar>(_ s: SSDShape, seed: UInt64, softplus: Bool = true, d: SSDSkipKind = .perHead, bias: Bool = true,
                              initial: Bool = true, dtScale: Double = 1, as _: T.Type = T.self) -> SSDInputs<T> {
    var rng = SplitMix64(seed: seed)
    func r(_ n: Int) -> [T] { (0 ..< n).map { _ in T(Double.random(in: -1 ..< 1, using: &rng)) } }
    let a = (0 ..< s.heads).map { _ in T(-Double.exp(Double.random(in: -1 ..< 1.5, using: &rng))) }
    let dt = (0 ..< s.timeStepCount).map { _ -> T in
        let step = dtScale * Double.exp(Double.random(in: Double.log(0.001) ..< Double.log(0.2), using: &rng))
        return T(softplus ? step + Double.log(-Double.expMinusOne(-step)) : step)
    }
    let dValues: [T]? = switch d {
    case .none: nil
    case .perHead: r(s.heads)
    case .perChannel: r(s.heads * s.headDimension)
    }
    return SSDInputs(x: r(s.sequenceCount), dt: dt, a: a, b: r(s.projectionCount), c: r(s.projectionCount), d: dValues,
                     dtBias: bias ? r(s.heads).map { $0 * T(0.1) } : nil, initialStates: initial ? r(s.stateCount) : nil)
}

enum SSDSkipKind { case none, perHead, perChannel }

@Suite("SSD scan (Mamba-2)")
struct SSDScanTests {
    @Test("chunked forward equals the plain loop in Double, for any L, Q, groups, D and initial state",
          arguments: [(1, 1, 16), (7, 2, 4), (100, 2, 32), (64, 1, 64), (33, 2, 64), (257, 1, 256), (1000, 2, 96)])
    func forwardMatchesReference(length L: Int, batch B: Int, chunk Q: Int) throws {
        for (groups, d, initial) in [(1, SSDSkipKind.perHead, true), (2, .perChannel, false), (2, .none, true)] {
            let shape = try SSDShape(batch: B, length: L, heads: 4, headDimension: 3, groups: groups, state: 5)
            let scan = try SSDScan<Double>(shape: shape, chunkLength: Q, threads: 2)
            let x = ssdProblem(shape, seed: UInt64(L * 31 + Q), d: d, initial: initial, as: Double.self)
            let (out, final) = try scan.forward(x)
            let (refOut, refFinal) = try scan.reference(x)
            #expect(relativeError(out, refOut) < 1e-12, "L \(L) Q \(Q) G \(groups)")
            #expect(relativeError(final, refFinal) < 1e-12, "L \(L) Q \(Q) G \(groups)")
        }
    }

    @Test("the time-step limits clamp dt′, and without softplus dt is used as given")
    func timeStepProcessing() throws {
        let shape = try SSDShape(batch: 1, length: 50, heads: 2, headDimension: 2, groups: 1, state: 3)
        let clamp = try SSDTimeStep(softplus: true, minimum: 0.01, maximum: 0.05)
        let clamped = try SSDScan<Double>(shape: shape, chunkLength: 16, timeStep: clamp)
        let x = ssdProblem(shape, seed: 3, as: Double.self)
        #expect(relativeError(try clamped.forward(x).out, try clamped.reference(x).out) < 1e-12)
        // The clamp changes the result (the steps span 0.001 … 0.2).
        let free = try SSDScan<Double>(shape: shape, chunkLength: 16)
        #expect(relativeError(try clamped.forward(x).out, try free.forward(x).out) > 1e-3)
        let raw = try SSDScan<Double>(shape: shape, chunkLength: 16, timeStep: SSDTimeStep(softplus: false))
        let positive = ssdProblem(shape, seed: 4, softplus: false, bias: false, as: Double.self)
        #expect(relativeError(try raw.forward(positive).out, try raw.reference(positive).out) < 1e-12)
        #expect(throws: SSMError.self) { try SSDTimeStep(minimum: 0.2, maximum: 0.1) }
    }

    @Test("strong decay (|Λ| past the factored limit) takes the difference form, still exact")
    func strongDecay() throws {
        let shape = try SSDShape(batch: 1, length: 300, heads: 2, headDimension: 2, groups: 1, state: 4)
        // dt·A of several units per token: Λ reaches hundreds within a chunk.
        let scan = try SSDScan<Double>(shape: shape, chunkLength: 128)
        let x = ssdProblem(shape, seed: 9, dtScale: 40, as: Double.self)
        let (out, final) = try scan.forward(x)
        let (refOut, refFinal) = try scan.reference(x)
        #expect(relativeError(out, refOut) < 1e-12)
        #expect(relativeError(final, refFinal) < 1e-12)
        let scanF = try SSDScan<Float>(shape: shape, chunkLength: 128)
        let xf = ssdProblem(shape, seed: 9, dtScale: 40, as: Float.self)
        #expect(relativeError(try scanF.forward(xf).out, refOut) < 1e-5)
    }

    @Test("step mode equals chunked mode to rounding in Double at L = 1, 7, 1000, 4097", arguments: [1, 7, 1000, 4097])
    func stepMatchesChunked(length L: Int) throws {
        let shape = try SSDShape(batch: 2, length: L, heads: 4, headDimension: 4, groups: 2, state: 8)
        let scan = try SSDScan<Double>(shape: shape, chunkLength: 256, threads: 2)
        let x = ssdProblem(shape, seed: UInt64(L), d: .perChannel, as: Double.self)
        let (out, final) = try scan.forward(x)
        let stepped = try stepThrough(scan, x)
        #expect(relativeError(stepped.out, out) < 1e-12)
        #expect(relativeError(stepped.final, final) < 1e-12)
    }

    @Test("Float: chunked within 2e-5 of the Double loop at L = 8192 (Q = 256)")
    func floatAccuracyLong() throws {
        let shape = try SSDShape(batch: 1, length: 8192, heads: 2, headDimension: 8, groups: 1, state: 16)
        let x64 = ssdProblem(shape, seed: 12, as: Double.self)
        let x32 = SSDInputs<Float>(x: x64.x.map(Float.init), dt: x64.dt.map(Float.init), a: x64.a.map(Float.init), b: x64.b.map(Float.init),
                                   c: x64.c.map(Float.init), d: x64.d?.map(Float.init), dtBias: x64.dtBias?.map(Float.init),
                                   initialStates: x64.initialStates?.map(Float.init))
        let reference = try SSDScan<Double>(shape: shape).reference(x64)
        let chunked = try SSDScan<Float>(shape: shape, threads: 2).forward(x32)
        let stepped = try stepThrough(SSDScan<Float>(shape: shape), x32)
        let (e1, e2) = (relativeError(chunked.out, reference.out), relativeError(stepped.out, reference.out))
        #expect(e1 < 2e-5, "chunked \(e1)")
        #expect(e2 < 2e-5, "step \(e2)")
        #expect(relativeError(chunked.finalStates, reference.finalStates) < 2e-5)
    }

    @Test("backward equals central differences in Double, for every input",
          arguments: [(1, 29, 8, 2, SSDSkipKind.perHead), (2, 40, 16, 1, .perChannel), (1, 5, 16, 2, .none)])
    func backwardMatchesFiniteDifferences(batch B: Int, length L: Int, chunk Q: Int, groups G: Int, d: SSDSkipKind) throws {
        let shape = try SSDShape(batch: B, length: L, heads: 4, headDimension: 3, groups: G, state: 4)
        for timeStep in [SSDTimeStep.official, try SSDTimeStep(softplus: true, minimum: 0.002, maximum: 0.15)] {
            let scan = try SSDScan<Double>(shape: shape, chunkLength: Q, timeStep: timeStep, threads: 2)
            let x = ssdProblem(shape, seed: UInt64(L + Q), d: d, as: Double.self)
            var rng = SplitMix64(seed: 77)
            let dOut = [Double].random(shape.sequenceCount, &rng), dFinal = [Double].random(shape.stateCount, &rng)
            let g = try scan.backward(x, dOut: dOut, dFinalStates: dFinal)
            func loss(_ v: SSDInputs<Double>) throws -> Double {
                let (out, final) = try scan.forward(v)
                return dot(out, dOut) + dot(final, dFinal)
            }
            // Each input along a random direction: Σ g·v against (f(θ + εv) − f(θ − εv)) / 2ε.
            let paths: [(String, WritableKeyPath<SSDInputs<Double>, [Double]>, [Double])] = [
                ("x", \.x, g.x), ("dt", \.dt, g.dt), ("A", \.a, g.a), ("B", \.b, g.b), ("C", \.c, g.c),
            ]
            var optional: [(String, WritableKeyPath<SSDInputs<Double>, [Double]?>, [Double]?)] = [("dt_bias", \.dtBias, g.dtBias), ("initial_states", \.initialStates, g.initialStates)]
            if d != .none { optional.append(("D", \.d, g.d)) }
            let eps = 1e-6
            for (name, path, gradient) in paths {
                let v = [Double].random(x[keyPath: path].count, &rng)
                var plus = x, minus = x
                plus[keyPath: path] = zip(x[keyPath: path], v).map { $0 + eps * $1 }
                minus[keyPath: path] = zip(x[keyPath: path], v).map { $0 - eps * $1 }
                let numeric = (try loss(plus) - loss(minus)) / (2 * eps)
                let analytic = dot(gradient, v)
                #expect(abs(numeric - analytic) <= 1e-6 * max(1, abs(analytic)), "\(name): \(analytic) vs \(numeric)")
            }
            for (name, path, gradient) in optional {
                let base = try #require(x[keyPath: path]), gradient = try #require(gradient, "d_\(name)")
                let v = [Double].random(base.count, &rng)
                var plus = x, minus = x
                plus[keyPath: path] = zip(base, v).map { $0 + eps * $1 }
                minus[keyPath: path] = zip(base, v).map { $0 - eps * $1 }
                let numeric = (try loss(plus) - loss(minus)) / (2 * eps)
                let analytic = dot(gradient, v)
                #expect(abs(numeric - analytic) <= 1e-6 * max(1, abs(analytic)), "\(name): \(analytic) vs \(numeric)")
            }
        }
    }

    @Test("one and two threads give bit-identical results, forward and backward")
    func threadsAreDeterministic() throws {
        let shape = try SSDShape(batch: 2, length: 300, heads: 4, headDimension: 4, groups: 2, state: 8)
        let x = ssdProblem(shape, seed: 5, as: Float.self)
        var rng = SplitMix64(seed: 6)
        let dOut = [Float].random(shape.sequenceCount, &rng)
        let one = try SSDScan<Float>(shape: shape, chunkLength: 64, threads: 1)
        let two = try SSDScan<Float>(shape: shape, chunkLength: 64, threads: 2)
        #expect(try one.forward(x).out == two.forward(x).out)
        let (g1, g2) = (try one.backward(x, dOut: dOut), try two.backward(x, dOut: dOut))
        #expect(g1.x == g2.x && g1.dt == g2.dt && g1.a == g2.a && g1.b == g2.b && g1.c == g2.c && g1.d == g2.d)
    }

    @Test("bad inputs get typed errors naming the argument")
    func badInputs() throws {
        #expect(throws: SSMError.self) { try SSDShape(batch: 1, length: 4, heads: 3, headDimension: 2, groups: 2, state: 4) }
        #expect(throws: SSMError.self) { try SSDShape(batch: 1, length: 0, heads: 2, headDimension: 2, state: 4) }
        let shape = try SSDShape(batch: 1, length: 10, heads: 2, headDimension: 2, groups: 1, state: 3)
        #expect(throws: SSMError.self) { try SSDScan<Double>(shape: shape, chunkLength: 0) }
        let scan = try SSDScan<Double>(shape: shape, chunkLength: 4)
        var x = ssdProblem(shape, seed: 1, as: Double.self)
        x.b.removeLast()
        do { _ = try scan.forward(x); Issue.record("expected an error") } catch { #expect("\(error)".contains("B")) }
        x = ssdProblem(shape, seed: 1, as: Double.self)
        x.d = [1, 2, 3]
        do { _ = try scan.forward(x); Issue.record("expected an error") } catch { #expect("\(error)".contains("D")) }
        x = ssdProblem(shape, seed: 1, as: Double.self)
        x.x[3] = .nan
        do { _ = try scan.forward(x); Issue.record("expected an error") } catch { #expect("\(error)".contains("x")) }
        x = ssdProblem(shape, seed: 1, as: Double.self)
        var dOut = [Double](repeating: 1, count: shape.sequenceCount)
        dOut[0] = .infinity
        do { _ = try scan.backward(x, dOut: dOut); Issue.record("expected an error") } catch { #expect("\(error)".contains("d_out")) }
    }

    /// Step mode over a whole sequence from the initial states.
    func stepThrough<T: FFTScalar>(_ scan: SSDScan<T>, _ x: SSDInputs<T>) throws -> (out: [T], final: [T]) {
        let s = scan.shape
        let (B, L, H, P, G, N) = (s.batch, s.length, s.heads, s.headDimension, s.groups, s.state)
        var states = x.initialStates ?? [T](repeating: 0, count: s.stateCount)
        var out = [T](repeating: 0, count: s.sequenceCount)
        let stepScan = try SSDScan<T>(shape: s.with(length: 1), chunkLength: scan.chunkLength, timeStep: scan.timeStep, threads: scan.threads)
        var xt = [T](repeating: 0, count: B * H * P), dt = [T](repeating: 0, count: B * H), bt = [T](repeating: 0, count: B * G * N)
        var ct = bt, yt = xt
        for t in 0 ..< L {
            for b in 0 ..< B {
                let token = b * L + t
                for i in 0 ..< H * P { xt[b * H * P + i] = x.x[token * H * P + i] }
                for i in 0 ..< H { dt[b * H + i] = x.dt[token * H + i] }
                for i in 0 ..< G * N { bt[b * G * N + i] = x.b[token * G * N + i]; ct[b * G * N + i] = x.c[token * G * N + i] }
            }
            let finite = withBaseAddresses([xt, dt, x.a, bt, ct, x.d, x.dtBias]) { p in
                states.withUnsafeMutableBufferPointer { st in
                    yt.withUnsafeMutableBufferPointer { y in
                        stepScan.step(states: st.baseAddress!, SSDOperands(
                            x: p[0]!, xStride: H * P, dt: p[1]!, dtStride: H, a: p[2]!, b: p[3]!, bStride: G * N, c: p[4]!, cStride: G * N,
                            d: p[5], dHasHeadDimension: (x.d?.count ?? 0) == H * P && P > 1, dtBias: p[6]), out: y.baseAddress!, outStride: H * P)
                    }
                }
            }
            #expect(finite)
            for b in 0 ..< B {
                for i in 0 ..< H * P { out[(b * L + t) * H * P + i] = yt[b * H * P + i] }
            }
        }
        return (out, states)
    }
}
