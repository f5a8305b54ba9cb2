import Testing
import SSMKit
@testable import SSMTraining

@Suite("The Mamba-2 mixer: scan mode, step mode, prefill")
struct Mamba2MixerTests {
    /// A small block (H = 4 heads of P = 2, G = 2 groups, N = 3, K = 3, Q = 4 so that L spans
    /// chunks unevenly) with every optional bias, parameters perturbed away from the init.
    func smallBlock(threads: Int = 2, bias: Bool = true, limit: ClosedRange<Double> = 0 ... .infinity) throws -> (Mamba2Mixer<Double>, ParameterSet<Double>) {
        let c = try Mamba2Configuration(modelWidth: 4, state: 3, convWidth: 3, innerWidth: 8, headDimension: 2, groups: 2, chunkLength: 4,
                                        projectionBias: bias, timeStepLimit: limit)
        let mixer = try Mamba2Mixer<Double>(configuration: c, threads: threads)
        var p = try mixer.initialParameters(seed: 3)
        var rng = SplitMix64(seed: 4)
        for i in p.storage.indices { p.storage[i] += 0.1 * Double.random(in: -1 ..< 1, using: &rng) }
        // Steps dt′ ≈ 0.3 … 1 (the init's 0.001 … 0.1 leave A's gradient near the noise of a
        // central difference).
        p["dt_bias"] = p["dt_bias"].map { _ in Double.random(in: -1 ..< 0.5, using: &rng) }
        return (mixer, p)
    }

    /// The block written out with plain loops in Double, the SSD by its plain-loop reference.
    func plainBlock(_ mixer: Mamba2Mixer<Double>, _ p: ParameterSet<Double>, _ h: [Double], batch B: Int, length L: Int) throws -> [Double] {
        let c = mixer.configuration
        let (M, E, H, P, G, N, K) = (c.modelWidth, c.innerWidth, c.heads, c.headDimension, c.groups, c.state, c.convWidth)
        let (C, W) = (c.convChannels, c.projectionWidth)
        let wIn = p["in_proj.weight"], bIn = p.names.contains("in_proj.bias") ? p["in_proj.bias"] : [Double](repeating: 0, count: W)
        var zx = [Double](repeating: 0, count: B * L * W)
        for r in 0 ..< B * L { for o in 0 ..< W { zx[r * W + o] = bIn[o] + (0 ..< M).reduce(0) { $0 + wIn[o * M + $1] * h[r * M + $1] } } }
        let wc = p["conv1d.weight"], bc = p["conv1d.bias"]
        var xbc = [Double](repeating: 0, count: B * L * C)
        for b in 0 ..< B {
            for t in 0 ..< L {
                for ch in 0 ..< C {
                    var v = bc[ch]
                    for j in 0 ..< K where t - (K - 1) + j >= 0 { v += wc[ch * K + j] * zx[(b * L + t - (K - 1) + j) * W + E + ch] }
                    xbc[(b * L + t) * C + ch] = v / (1 + Double.exp(-v))
                }
            }
        }
        let shape = try SSDShape(batch: B, length: L, heads: H, headDimension: P, groups: G, state: N)
        let scan = try SSDScan<Double>(shape: shape, chunkLength: c.chunkLength, timeStep: c.timeStep)
        var x = [Double](), dt = [Double](), bm = [Double](), cm = [Double]()
        for r in 0 ..< B * L {
            let base = r * C, gn = G * N
            x += xbc[base ..< base + E]
            bm += xbc[base + E ..< base + E + gn]
            cm += xbc[base + E + gn ..< base + C]
            let dtStart = r * W + 2 * E + 2 * gn
            dt += zx[dtStart ..< r * W + W]
        }
        let y = try scan.reference(SSDInputs(x: x, dt: dt, a: p["A_log"].map { -Double.exp($0) }, b: bm, c: cm, d: p["D"], dtBias: p["dt_bias"])).out
        let nw = p["norm.weight"], size = E / G
        var n = [Double](repeating: 0, count: B * L * E)
        for r in 0 ..< B * L {
            let g = (0 ..< E).map { i -> Double in let z = zx[r * W + i]; return y[r * E + i] * z / (1 + Double.exp(-z)) }
            for k in 0 ..< G {
                let ms = (k * size ..< (k + 1) * size).reduce(0) { $0 + g[$1] * g[$1] } / Double(size)
                for i in k * size ..< (k + 1) * size { n[r * E + i] = g[i] / (ms + c.normEpsilon).squareRoot() * nw[i] }
            }
        }
        let wOut = p["out_proj.weight"], bOut = p.names.contains("out_proj.bias") ? p["out_proj.bias"] : [Double](repeating: 0, count: M)
        var out = [Double](repeating: 0, count: B * L * M)
        for r in 0 ..< B * L { for o in 0 ..< M { out[r * M + o] = bOut[o] + (0 ..< E).reduce(0) { $0 + wOut[o * E + $1] * n[r * E + $1] } } }
        return out
    }

    @Test("scan mode equals the block written as plain loops (Double), L = 1, 7, 13")
    func forwardMatchesPlainBlock() throws {
        for bias in [true, false] {
            let (mixer, p) = try smallBlock(bias: bias)
            for L in [1, 7, 13] {
                let h = randomValues(2 * L * 4, seed: UInt64(L))
                let y = try mixer.forward(h, batch: 2, length: L, parameters: p).y
                #expect(relativeError(y, try plainBlock(mixer, p, h, batch: 2, length: L)) <= 1e-12, "L \(L), bias \(bias)")
            }
        }
    }

    @Test("backward = central finite differences (1 and 2 threads, L spanning chunks, L = 1, a dt clamp)",
          arguments: [(1, 7, false), (2, 9, false), (2, 1, false), (2, 9, true)])
    func backwardMatchesFiniteDifferences(_ threads: Int, _ L: Int, _ clamp: Bool) throws {
        let (mixer, p) = try smallBlock(threads: threads, limit: clamp ? 0.5 ... 0.8 : 0 ... .infinity)
        try expectMixerGradients(mixer, p, batch: 2, length: L, seed: 5)
    }

    @Test("step mode = scan mode token by token; prefill then decode = one pass; chunked prefill = one pass")
    func stepMatchesScan() throws {
        let (mixer, p) = try smallBlock()
        let (B, L, M) = (2, 13, 4)
        let hidden = randomValues(B * L * M, seed: 6)
        let one = try mixer.forward(hidden, batch: B, length: L, parameters: p).y
        func tokens(_ range: Range<Int>) -> [Double] {
            var out = [Double]()
            for b in 0 ..< B { out += hidden[(b * L + range.lowerBound) * M ..< (b * L + range.upperBound) * M] }
            return out
        }
        func place(_ y: [Double], _ range: Range<Int>, into out: inout [Double]) {
            let n = range.count
            for b in 0 ..< B {
                for t in 0 ..< n { for j in 0 ..< M { out[(b * L + range.lowerBound + t) * M + j] = y[(b * n + t) * M + j] } }
            }
        }
        #expect(relativeError(try mixer.forwardRecurrent(hidden, batch: B, length: L, parameters: p), one) <= 1e-12)
        var state = try mixer.makeState(batch: B, length: L, parameters: try mixer.withParameterView(p) { $0 })
        var stepped = [Double](repeating: 0, count: B * L * M)
        for t in 0 ..< L { place(try mixer.step(&state, tokens(t ..< t + 1), parameters: p), t ..< t + 1, into: &stepped) }
        #expect(relativeError(stepped, one) <= 1e-12)
        for split in [5, 1] {
            var mixed = [Double](repeating: 0, count: B * L * M)
            var s = try mixer.makeState(batch: B, length: L, parameters: try mixer.withParameterView(p) { $0 })
            place(try mixer.prefill(tokens(0 ..< split), length: split, parameters: p, state: &s), 0 ..< split, into: &mixed)
            var chunked = mixed
            var carried = s
            for t in split ..< L { place(try mixer.step(&s, tokens(t ..< t + 1), parameters: p), t ..< t + 1, into: &mixed) }
            #expect(relativeError(mixed, one) <= 1e-12, "prefill \(split), then steps")
            place(try mixer.prefill(tokens(split ..< L), length: L - split, parameters: p, state: &carried), split ..< L, into: &chunked)
            #expect(relativeError(chunked, one) <= 1e-12, "chunks at \(split)")
            #expect(relativeError(carried.ssm, state.ssm) <= 1e-12 && relativeError(carried.conv, state.conv) <= 1e-12)
        }
    }

    @Test("bad configuration and input get typed errors")
    func badInput() throws {
        #expect(throws: SSMError.self) { try Mamba2Configuration(modelWidth: 4, innerWidth: 8, headDimension: 3) }
        #expect(throws: SSMError.self) { try Mamba2Configuration(modelWidth: 4, innerWidth: 8, headDimension: 2, groups: 3) }
        #expect(throws: SSMError.self) { try Mamba2Configuration(modelWidth: 4, innerWidth: 8, headDimension: 2, timeStepLimit: -1 ... 1) }
        let (mixer, p) = try smallBlock()
        var hidden = [Double](repeating: 0.5, count: 2 * 3 * 4)
        #expect(throws: SSMError.self) { try mixer.forward(hidden, batch: 2, length: 4, parameters: p) }
        hidden[5] = .nan
        #expect(throws: SSMError.value(argument: "hidden_states", expected: "finite values (element 5 is nan)")) {
            try mixer.forward(hidden, batch: 2, length: 3, parameters: p)
        }
        var state = try mixer.makeState(batch: 1, length: 1, parameters: try mixer.withParameterView(p) { $0 })
        #expect(throws: SSMError.self) { try mixer.step(&state, [1, 2, 3], parameters: p) }
        #expect(throws: SSMError.self) { try mixer.makeState(batch: 1, conv: [1], ssm: []) }
    }
}
