import Testing
import SSMKit
@testable import SSMTraining

@Suite("The Mamba mixer: scan mode, step mode, prefill")
struct MambaMixerTests {
    /// A small block with every optional bias, and parameters perturbed away from the official
    /// init so that no gradient is trivially zero.
    func smallBlock(threads: Int = 2) throws -> (MambaMixer<Double>, ParameterSet<Double>) {
        let c = try MambaConfiguration(modelWidth: 4, state: 3, convWidth: 3, innerWidth: 8, dtRank: 2, projectionBias: true)
        let mixer = try MambaMixer<Double>(configuration: c, threads: threads)
        var p = try mixer.initialParameters(seed: 3)
        var rng = SplitMix64(seed: 4)
        for i in p.storage.indices { p.storage[i] += 0.1 * Double.random(in: -1 ..< 1, using: &rng) }
        return (mixer, p)
    }

    @Test("backward with every optional bias = central finite differences (1 and 2 threads, odd L, L = 1)",
          arguments: [(1, 7), (2, 7), (2, 1)])
    func backwardMatchesFiniteDifferences(_ threads: Int, _ L: Int) throws {
        let (mixer, p) = try smallBlock(threads: threads)
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
        // Token by token from zero, through the protocol's recurrent mode and through step.
        #expect(relativeError(try mixer.forwardRecurrent(hidden, batch: B, length: L, parameters: p), one) <= 1e-13)
        var state = try mixer.makeState(batch: B, length: L, parameters: try mixer.withParameterView(p) { $0 })
        var stepped = [Double](repeating: 0, count: B * L * M)
        for t in 0 ..< L { place(try mixer.step(&state, tokens(t ..< t + 1), parameters: p), t ..< t + 1, into: &stepped) }
        #expect(relativeError(stepped, one) <= 1e-13)
        // Prefill 5 tokens (more than K), or 2 (fewer than K − 1 + 1), then decode the rest, or
        // prefill the rest from the carried state.
        for split in [5, 2] {
            var mixed = [Double](repeating: 0, count: B * L * M)
            var s = try mixer.makeState(batch: B, length: L, parameters: try mixer.withParameterView(p) { $0 })
            place(try mixer.prefill(tokens(0 ..< split), length: split, parameters: p, state: &s), 0 ..< split, into: &mixed)
            var chunked = mixed
            var carried = s
            for t in split ..< L { place(try mixer.step(&s, tokens(t ..< t + 1), parameters: p), t ..< t + 1, into: &mixed) }
            #expect(relativeError(mixed, one) <= 1e-13, "prefill \(split), then steps")
            place(try mixer.prefill(tokens(split ..< L), length: L - split, parameters: p, state: &carried), split ..< L, into: &chunked)
            #expect(relativeError(chunked, one) <= 1e-13, "chunks at \(split)")
            #expect(relativeError(carried.ssm, state.ssm) <= 1e-13 && relativeError(carried.conv, state.conv) <= 1e-13)
        }
    }

    @Test("bad input: a non-finite hidden state or parameter, wrong sizes, a wrong parameter set")
    func badInput() throws {
        let (mixer, p) = try smallBlock()
        var hidden = [Double](repeating: 0.5, count: 2 * 3 * 4)
        #expect(throws: SSMError.shape(argument: "u", expected: "(B, L, H) = (2, 4, 4)", actual: [24])) {
            try mixer.forward(hidden, batch: 2, length: 4, parameters: p)
        }
        hidden[5] = .nan
        #expect(throws: SSMError.value(argument: "hidden_states", expected: "finite values (element 5 is nan)")) {
            try mixer.forward(hidden, batch: 2, length: 3, parameters: p)
        }
        hidden[5] = 0.5
        var q = p
        q["A_log"] = q["A_log"].map { _ in .infinity }
        #expect(throws: SSMError.self) { try mixer.forward(hidden, batch: 2, length: 3, parameters: q) }
        var state = try mixer.makeState(batch: 1, length: 1, parameters: try mixer.withParameterView(p) { $0 })
        #expect(throws: SSMError.shape(argument: "hidden_states", expected: "(B, M) = (1, 4)", actual: [3])) {
            try mixer.step(&state, [1, 2, 3], parameters: p)
        }
        #expect(throws: SSMError.value(argument: "parameters", expected: "this mixer's parameters \(mixer.parameterDeclarations.map(\.name)) in order")) {
            try mixer.forward(hidden, batch: 2, length: 3, parameters: ParameterSet<Double>())
        }
        #expect(throws: SSMError.self) { try MambaConfiguration(modelWidth: 0) }
        #expect(throws: SSMError.self) { try MambaMixer<Double>(width: 4, state: 3, threads: 0) }
    }
}
