import Testing
import SSMKit
import SSMTraining  // not @testable: a hybrid stack needs only the public API

/// A stack of different mixers, built as a user outside the package would.
@Suite("Hybrid stacks")
struct HybridModelTests {
    func model(threads: Int = 2) throws -> SequenceModel<Double> {
        let (H, N) = (4, 4)
        let mixers: [any SequenceMixer<Double>] = [
            try S4DMixer<Double>(width: H, state: N, threads: threads),
            try MambaMixer<Double>(width: H, state: N, threads: threads),
            try S4Mixer<Double>(width: H, state: N, threads: threads),
        ]
        return try SequenceModel(mixers: mixers, input: .tokens(vocabulary: 5), output: .perToken(classes: 5), backbone: .mamba,
                                 dropout: 0.1, threads: threads)
    }

    func batch(B: Int, L: Int, seed: UInt64) -> SequenceBatch {
        var rng = SplitMix64(seed: seed)
        return SequenceBatch(batch: B, length: L, tokens: (0 ..< B * L).map { _ in Int.random(in: 0 ..< 5, using: &rng) },
                             targets: (0 ..< B * L).map { _ in Double(Int.random(in: 0 ..< 5, using: &rng)) })
    }

    @Test("S4D, Mamba and S4 blocks in one stack: Mamba's names, token-major stream, every gradient = central differences")
    func gradients() throws {
        let net = try model()
        #expect(net.stream == .tokenMajor)
        let p = try net.initialParameters(seed: 3)
        #expect(p.names.contains("backbone.layers.0.mixer.kernel.log_dt"))
        #expect(p.names.contains("backbone.layers.1.mixer.A_log"))
        #expect(p.names.contains("backbone.layers.2.mixer.kernel.P"))
        #expect(p.groups["backbone.layers.1.mixer.A_log"] == .ssm && p.groups["backbone.layers.0.mixer.kernel.C"] == .standard)
        let x = batch(B: 2, L: 7, seed: 4)
        var rng = SplitMix64(seed: 5)
        let dOut = (0 ..< 2 * 7 * 5).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let (_, act) = try net.forward(x, parameters: p, dropoutSeed: 9)
        var g = p.zeros()
        try net.backward(dOutputs: dOut, activations: act, parameters: p, gradients: &g)
        func loss(_ q: ParameterSet<Double>) throws -> Double {
            zip(dOut, try net.forward(x, parameters: q, dropoutSeed: 9).outputs).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let scale = g.storage.reduce(0) { max($0, abs($1)) }
        let e = 1e-6
        for name in p.names {
            let count = p[name].count
            for i in Set([0, count / 2, count - 1]) {
                var plus = p, minus = p
                var v = p[name]
                v[i] += e; plus[name] = v
                v[i] -= 2 * e; minus[name] = v
                let fd = (try loss(plus) - loss(minus)) / (2 * e)
                #expect(abs(fd - g[name][i]) <= 1e-6 * max(scale, 1), "\(name)[\(i)]: \(g[name][i]) vs \(fd)")
            }
        }
    }

    @Test("S4's backbone around a Mamba block: LayerNorm on the token-major stream, every gradient = central differences")
    func layerNormBackbone() throws {
        let (H, N) = (4, 4)
        let mixers: [any SequenceMixer<Double>] = [try MambaMixer<Double>(width: H, state: N, threads: 2),
                                                   try S4DMixer<Double>(width: H, state: N, threads: 2)]
        let net = try SequenceModel(mixers: mixers, input: .tokens(vocabulary: 5), output: .perToken(classes: 5), backbone: .s4, threads: 2)
        #expect(net.stream == .tokenMajor)
        let p = try net.initialParameters(seed: 6)
        let x = batch(B: 3, L: 5, seed: 7)
        var rng = SplitMix64(seed: 8)
        let dOut = (0 ..< 3 * 5 * 5).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let (_, act) = try net.forward(x, parameters: p)
        var g = p.zeros()
        try net.backward(dOutputs: dOut, activations: act, parameters: p, gradients: &g)
        func loss(_ q: ParameterSet<Double>) throws -> Double { zip(dOut, try net.forward(x, parameters: q).outputs).reduce(0) { $0 + $1.0 * $1.1 } }
        let scale = g.storage.reduce(0) { max($0, abs($1)) }
        for name in p.names where name.contains("norm") || name.hasPrefix("encoder") {
            for i in Set([0, p[name].count - 1]) {
                var plus = p, minus = p
                var v = p[name]
                v[i] += 1e-6; plus[name] = v
                v[i] -= 2e-6; minus[name] = v
                let fd = (try loss(plus) - loss(minus)) / 2e-6
                #expect(abs(fd - g[name][i]) <= 1e-6 * max(scale, 1), "\(name)[\(i)]: \(g[name][i]) vs \(fd)")
            }
        }
    }

    @Test("the hybrid's recurrent mode (every mixer stepped token by token) = its convolution mode")
    func recurrent() throws {
        let net = try model()
        let p = try net.initialParameters(seed: 6)
        let x = batch(B: 2, L: 11, seed: 7)
        let conv = try net.forward(x, parameters: p).outputs, rec = try net.forwardRecurrent(x, parameters: p)
        let err = zip(conv, rec).reduce(0.0) { max($0, abs($1.0 - $1.1)) } / conv.reduce(0.0) { max($0, abs($1)) }
        #expect(err <= 1e-11, "relative difference \(err)")
    }

    @Test("mixers of different widths, or none, are refused")
    func badStacks() throws {
        let a: any SequenceMixer<Double> = try S4DMixer<Double>(width: 4, state: 4)
        let b: any SequenceMixer<Double> = try MambaMixer<Double>(width: 6, state: 4)
        #expect(throws: SSMError.self) { try SequenceModel(mixers: [a, b], input: .features(1), output: .perToken(classes: 1), backbone: .mamba) }
        #expect(throws: SSMError.self) { try SequenceModel<Double>(mixers: [], input: .features(1), output: .perToken(classes: 1), backbone: .s4) }
    }
}
