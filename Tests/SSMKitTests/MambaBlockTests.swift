import Testing
@testable import SSMKit

@Suite("Selective state update and the Mamba block")
struct MambaBlockTests {
    /// A small block with every optional bias, and parameters perturbed away from the official
    /// init so that no gradient is trivially zero.
    func smallBlock() throws -> (MambaBlock<Double>, MambaParameters<Double>) {
        let c = try MambaConfiguration(modelWidth: 4, state: 3, convWidth: 3, innerWidth: 8, dtRank: 2, projectionBias: true)
        var p = MambaParameters<Double>(configuration: c, seed: 3)
        var rng = SplitMix64(seed: 4)
        for name in p.values.keys.sorted() { p[name] = p[name].map { $0 + 0.1 * Double.random(in: -1 ..< 1, using: &rng) } }
        return (try MambaBlock(configuration: c), p)
    }

    @Test("state update: L steps from a state = the scan over L from that state (G = 2, all inputs)")
    func stateUpdateMatchesScan() throws {
        let (B, D, N, L) = (2, 4, 5, 9)
        let shape = try SelectiveScanShape(batch: B, channels: D, state: N, length: L,
                                           b: .inputDependent(groups: 2), c: .inputDependent(groups: 2))
        let x: SelectiveScanInputs<Double> = selectiveProblem(shape, seed: 12)
        let scan = try SelectiveScan<Double>(shape: shape, deltaSoftplus: true).forward(x)
        let update = try SelectiveStateUpdate<Double>(batch: B, channels: D, state: N, groups: 2)
        var state = x.initialState!
        var out = [Double](repeating: 0, count: B * D), stepped = [Double](repeating: 0, count: B * D * L)
        for t in 0 ..< L {
            func at(_ v: [Double], rows: Int) -> [Double] { (0 ..< rows).map { v[$0 * L + t] } }
            try update(state: &state, u: at(x.u, rows: B * D), dt: at(x.delta, rows: B * D), a: x.a,
                       b: at(x.b, rows: B * 2 * N), c: at(x.c, rows: B * 2 * N), d: x.d, z: at(x.z!, rows: B * D),
                       dtBias: x.deltaBias, out: &out)
            for row in 0 ..< B * D { stepped[row * L + t] = out[row] }
        }
        #expect(relativeError(stepped, scan.out) <= 1e-14)
        #expect(relativeError(state, scan.lastState) <= 1e-14)
    }

    @Test("scan-mode backward: d_hidden and every parameter against central finite differences")
    func backwardMatchesFiniteDifferences() throws {
        let (block, p) = try smallBlock()
        let (B, L, M) = (2, 7, 4)
        var rng = SplitMix64(seed: 5)
        let hidden: [Double] = .random(B * L * M, &rng), dOut: [Double] = .random(B * L * M, &rng)
        let (_, act) = try block.forward(hidden, batch: B, length: L, parameters: p)
        let (dHidden, g) = try block.backward(dOut: dOut, activations: act, parameters: p)
        func loss(_ h: [Double], _ q: MambaParameters<Double>) throws -> Double {
            dot(dOut, try block.forward(h, batch: B, length: L, parameters: q).out)
        }
        let eps = 1e-6
        func check(_ name: String, _ analytic: [Double], _ bumped: (Int, Double) throws -> Double) throws {
            let scale = max(1e-3, maxAbs(analytic))
            for i in analytic.indices {
                let fd = (try bumped(i, eps) - bumped(i, -eps)) / (2 * eps)
                #expect(abs(fd - analytic[i]) <= 1e-6 * scale, "d_\(name)[\(i)]: \(analytic[i]) vs \(fd)")
            }
        }
        try check("hidden_states", dHidden) { i, e in
            var h = hidden
            h[i] += e
            return try loss(h, p)
        }
        for (name, shape) in block.configuration.parameterShapes {
            #expect(g[name].count == shape.reduce(1, *), "d_\(name) count")
            try check(name, g[name]) { i, e in
                var q = p
                q.values[name]![i] += e
                return try loss(hidden, q)
            }
        }
    }

    @Test("step mode = scan mode token by token; prefill then decode = one pass; chunked prefill = one pass")
    func stepMatchesScan() throws {
        let (block, p) = try smallBlock()
        let (B, L, M) = (2, 13, 4)
        var rng = SplitMix64(seed: 6)
        let hidden: [Double] = .random(B * L * M, &rng)
        let one = try block.forward(hidden, batch: B, length: L, parameters: p).out
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
        // Token by token from zero.
        var state = try block.makeState(batch: B)
        var stepped = [Double](repeating: 0, count: B * L * M)
        for t in 0 ..< L { place(try block.step(&state, tokens(t ..< t + 1), parameters: p), t ..< t + 1, into: &stepped) }
        #expect(relativeError(stepped, one) <= 1e-13)
        // Prefill 5 tokens (fewer than... more than K), then decode the rest; also a prefill of 2 < K − 1 tokens.
        for split in [5, 2] {
            var mixed = [Double](repeating: 0, count: B * L * M)
            var (y, s) = try block.prefill(tokens(0 ..< split), batch: B, length: split, parameters: p)
            place(y, 0 ..< split, into: &mixed)
            for t in split ..< L { place(try block.step(&s, tokens(t ..< t + 1), parameters: p), t ..< t + 1, into: &mixed) }
            #expect(relativeError(mixed, one) <= 1e-13, "prefill \(split)")
            // The rest as a second prefill from the carried state.
            var chunked = [Double](repeating: 0, count: B * L * M)
            (y, s) = try block.prefill(tokens(0 ..< split), batch: B, length: split, parameters: p)
            place(y, 0 ..< split, into: &chunked)
            let rest = try block.prefill(tokens(split ..< L), batch: B, length: L - split, parameters: p, from: s)
            place(rest.out, split ..< L, into: &chunked)
            #expect(relativeError(chunked, one) <= 1e-13, "chunks at \(split)")
            #expect(relativeError(rest.state.ssm, state.ssm) <= 1e-13 && relativeError(rest.state.conv, state.conv) <= 1e-13)
        }
    }

    @Test("bad input: a missing, surplus, misshapen or non-finite parameter, a wrong hidden size")
    func badInput() throws {
        let (block, p) = try smallBlock()
        let hidden = [Double](repeating: 0.5, count: 2 * 3 * 4)
        var q = p
        q.values["D"] = nil
        #expect(throws: SSMError.missing(argument: "D", expected: "a tensor of shape [8]")) {
            try block.forward(hidden, batch: 2, length: 3, parameters: q)
        }
        q = p
        q.values["A_log"]!.removeLast()
        #expect(throws: SSMError.shape(argument: "A_log", expected: "[8, 3]", actual: [23])) {
            try block.forward(hidden, batch: 2, length: 3, parameters: q)
        }
        q = p
        q.values["x_proj.bias"] = [0]
        #expect(throws: SSMError.self) { try block.forward(hidden, batch: 2, length: 3, parameters: q) }
        q = p
        q.values["conv1d.weight"]![0] = .infinity
        #expect(throws: SSMError.self) { try block.forward(hidden, batch: 2, length: 3, parameters: q) }
        #expect(throws: SSMError.self) { try block.forward(hidden, batch: 2, length: 4, parameters: p) }
        var state = try block.makeState(batch: 1)
        #expect(throws: SSMError.self) { try block.step(&state, [1, 2, 3], parameters: p) }
        #expect(throws: SSMError.self) { try MambaConfiguration(modelWidth: 0) }
    }
}
