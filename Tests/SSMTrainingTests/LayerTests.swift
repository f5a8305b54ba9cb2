import Testing
import SSMKit
@testable import SSMTraining

/// Each layer against a plain loop (forward) and central differences (backward), in Double.
@Suite("Layers")
struct LayerTests {
    @Test("Linear: forward = plain loop; backward = finite differences", arguments: [(1, 1, 1), (5, 3, 4), (7, 6, 2)])
    func linear(_ shape: (Int, Int, Int)) {
        let (R, I, O) = shape
        let x = randomValues(R * I, seed: 1), w = randomValues(O * I, seed: 2), b = randomValues(O, seed: 3), dY = randomValues(R * O, seed: 4)
        let y = Linear.forward(x, weight: w, bias: b, rows: R, inputs: I, outputs: O)
        for r in 0 ..< R {
            for o in 0 ..< O {
                let expected = b[o] + (0 ..< I).reduce(0.0) { $0 + x[r * I + $1] * w[o * I + $1] }
                #expect(abs(y[r * O + o] - expected) <= 1e-14 * max(1, abs(expected)), "y[\(r), \(o)]")
            }
        }
        var dX: [Double]? = [Double](repeating: 0, count: R * I), dW = [Double](repeating: 0, count: O * I), dB: [Double]? = [Double](repeating: 0, count: O)
        Linear.backward(dY: dY, x: x, weight: w, rows: R, inputs: I, outputs: O, dX: &dX, dWeight: &dW, dBias: &dB)
        let loss = { (x: [Double], w: [Double], b: [Double]) in weightedSum(dY, Linear.forward(x, weight: w, bias: b, rows: R, inputs: I, outputs: O)) }
        expectGradient("x", dX!) { i, e in var v = x; v[i] += e; return loss(v, w, b) }
        expectGradient("weight", dW) { i, e in var v = w; v[i] += e; return loss(x, v, b) }
        expectGradient("bias", dB!) { i, e in var v = b; v[i] += e; return loss(x, w, v) }
    }

    @Test("1×1 convolution: forward = plain loop; backward = finite differences")
    func pointwiseConvolution() {
        let (B, I, O, L) = (2, 3, 5, 7)
        let x = randomValues(B * I * L, seed: 5), w = randomValues(O * I, seed: 6), b = randomValues(O, seed: 7), dY = randomValues(B * O * L, seed: 8)
        let y = PointwiseConvolution.forward(x, weight: w, bias: b, batch: B, inputs: I, outputs: O, length: L)
        for bb in 0 ..< B { for o in 0 ..< O { for t in 0 ..< L {
            let expected = b[o] + (0 ..< I).reduce(0.0) { $0 + w[o * I + $1] * x[(bb * I + $1) * L + t] }
            #expect(abs(y[(bb * O + o) * L + t] - expected) <= 1e-14 * max(1, abs(expected)))
        } } }
        var dX = [Double](repeating: 0, count: x.count), dW = [Double](repeating: 0, count: w.count), dB = [Double](repeating: 0, count: O)
        PointwiseConvolution.backward(dY: dY, x: x, weight: w, batch: B, inputs: I, outputs: O, length: L, dX: &dX, dWeight: &dW, dBias: &dB)
        let loss = { (x: [Double], w: [Double], b: [Double]) in
            weightedSum(dY, PointwiseConvolution.forward(x, weight: w, bias: b, batch: B, inputs: I, outputs: O, length: L))
        }
        expectGradient("x", dX) { i, e in var v = x; v[i] += e; return loss(v, w, b) }
        expectGradient("weight", dW) { i, e in var v = w; v[i] += e; return loss(x, v, b) }
        expectGradient("bias", dB) { i, e in var v = b; v[i] += e; return loss(x, w, v) }
    }

    @Test("LayerNorm and RMSNorm: forward = the formulas; backward = finite differences")
    func norms() {
        let (R, C) = (4, 7)
        let x = randomValues(R * C, seed: 9, scale: 3), w = randomValues(C, seed: 10), b = randomValues(C, seed: 11), dY = randomValues(R * C, seed: 12)
        let (y, s) = LayerNorm.forward(x, weight: w, bias: b, rows: R, channels: C)
        let (z, inverse) = RMSNorm.forward(x, weight: w, rows: R, channels: C)
        for r in 0 ..< R {
            let row = Array(x[r * C ..< (r + 1) * C])
            let mean = row.reduce(0, +) / Double(C)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(C)
            let rms = (row.reduce(0) { $0 + $1 * $1 } / Double(C) + 1e-5).squareRoot()
            for c in 0 ..< C {
                #expect(abs(y[r * C + c] - ((row[c] - mean) / (variance + 1e-5).squareRoot() * w[c] + b[c])) <= 1e-13)
                #expect(abs(z[r * C + c] - row[c] / rms * w[c]) <= 1e-13)
            }
        }
        var dX = [Double](repeating: 0, count: x.count), dW = [Double](repeating: 0, count: C), dB = dW
        LayerNorm.backward(dY: dY, x: x, weight: w, statistics: s, rows: R, channels: C, dX: &dX, dWeight: &dW, dBias: &dB)
        let layerLoss = { (x: [Double], w: [Double], b: [Double]) in weightedSum(dY, LayerNorm.forward(x, weight: w, bias: b, rows: R, channels: C).y) }
        expectGradient("x", dX) { i, e in var v = x; v[i] += e; return layerLoss(v, w, b) }
        expectGradient("weight", dW) { i, e in var v = w; v[i] += e; return layerLoss(x, v, b) }
        expectGradient("bias", dB) { i, e in var v = b; v[i] += e; return layerLoss(x, w, v) }
        var dX2 = [Double](repeating: 0, count: x.count), dW2 = [Double](repeating: 0, count: C)
        RMSNorm.backward(dY: dY, x: x, weight: w, inverseRMS: inverse, rows: R, channels: C, dX: &dX2, dWeight: &dW2)
        let rmsLoss = { (x: [Double], w: [Double]) in weightedSum(dY, RMSNorm.forward(x, weight: w, rows: R, channels: C).y) }
        expectGradient("x (RMS)", dX2) { i, e in var v = x; v[i] += e; return rmsLoss(v, w) }
        expectGradient("weight (RMS)", dW2) { i, e in var v = w; v[i] += e; return rmsLoss(x, v) }
    }

    @Test("LayerNorm over rows split across workers: y and dX have the bits of one worker, dw and db its values to rounding")
    func layerNormThreads() {
        let (R, C) = (301, 64)  // R·C ≥ 2^14: the forward splits too
        let x = randomValues(R * C, seed: 31, scale: 3).map(Float.init), w = randomValues(C, seed: 32).map(Float.init)
        let b = randomValues(C, seed: 33).map(Float.init), dY = randomValues(R * C, seed: 34).map(Float.init)
        func run(_ threads: Int) -> (y: [Float], dX: [Float], dW: [Float], dB: [Float]) {
            let (y, s) = LayerNorm.forward(x, weight: w, bias: b, rows: R, channels: C, threads: threads)
            var dX = [Float](repeating: 0, count: R * C), dW = [Float](repeating: 0, count: C), dB = dW
            LayerNorm.backward(dY: dY, x: x, weight: w, statistics: s, rows: R, channels: C, dX: &dX, dWeight: &dW, dBias: &dB, threads: threads)
            return (y, dX, dW, dB)
        }
        let (one, three) = (run(1), run(3))
        #expect(one.y == three.y && one.dX == three.dX)
        #expect(zip(one.dW + one.dB, three.dW + three.dB).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })
    }

    @Test("GELU, SiLU, GLU, dropout, embedding and pooling: backward = finite differences")
    func pointwise() throws {
        let x = randomValues(24, seed: 13, scale: 3), dY = randomValues(24, seed: 14)
        for f in Activation.allCases {
            var dX = [Double](repeating: 0, count: 24)
            f.backward(dY: dY, x: x, dX: &dX)
            expectGradient(f.rawValue, dX) { i, e in var v = x; v[i] += e; return weightedSum(dY, f.forward(v)) }
        }
        #expect(abs(gelu(1.0) - 0.8413447460685429) <= 1e-15, "GELU(1) = Φ(1)")
        // GLU over (blocks 2, 2, 6).
        var dG = [Double](repeating: 0, count: 24)
        GLU.backward(dY: Array(dY.prefix(12)), x: x, blocks: 2, half: 6, dX: &dG)
        expectGradient("glu", dG) { i, e in var v = x; v[i] += e; return weightedSum(Array(dY.prefix(12)), GLU.forward(v, blocks: 2, half: 6)) }
        // Dropout: the mask is a function of the seed; about p of it is zero; backward is the mask.
        let mask: [Double] = Dropout.mask(count: 10_000, probability: 0.25, seed: 3)
        #expect(mask == Dropout.mask(count: 10_000, probability: 0.25, seed: 3))
        let dropped = Double(mask.filter { $0 == 0 }.count) / 10_000
        #expect(abs(dropped - 0.25) < 0.02, "dropped fraction \(dropped)")
        #expect(mask.allSatisfy { $0 == 0 || $0 == 1 / 0.75 })
        var dD = [Double](repeating: 0, count: 24)
        let smallMask: [Double] = Dropout.mask(count: 24, probability: 0.5, seed: 4)
        Dropout.backward(dY: dY, mask: smallMask, dX: &dD)
        expectGradient("dropout", dD) { i, e in var v = x; v[i] += e; return weightedSum(dY, Dropout.forward(v, mask: smallMask)) }
        // Embedding: rows of W; a token seen twice accumulates; out-of-range tokens are refused.
        let w = randomValues(5 * 3, seed: 15), tokens = [4, 0, 4, 2]
        let e = try Embedding.forward(tokens, weight: w, vocabulary: 5, channels: 3)
        #expect(Array(e[0 ..< 3]) == Array(w[12 ..< 15]))
        var dW = [Double](repeating: 0, count: 15)
        Embedding.backward(dY: Array(dY.prefix(12)), tokens: tokens, channels: 3, dWeight: &dW)
        try expectGradient("embedding", dW) { i, eps in
            var v = w; v[i] += eps
            return weightedSum(Array(dY.prefix(12)), try Embedding.forward(tokens, weight: v, vocabulary: 5, channels: 3))
        }
        #expect(throws: SSMError.self) { try Embedding.forward([5], weight: w, vocabulary: 5, channels: 3) }
        #expect(throws: SSMError.self) { try Embedding.forward([-1], weight: w, vocabulary: 5, channels: 3) }
        // Pooling over (B 2, L 3, C 4).
        for pooling in Pooling.allCases {
            var dP = [Double](repeating: 0, count: 24)
            pooling.backward(dY: Array(dY.prefix(8)), batch: 2, length: 3, channels: 4, dX: &dP)
            expectGradient("pool \(pooling)", dP) { i, e in
                var v = x; v[i] += e; return weightedSum(Array(dY.prefix(8)), pooling.forward(v, batch: 2, length: 3, channels: 4))
            }
        }
    }

    @Test("losses: cross-entropy (with ignored rows) and mean squared, gradients = finite differences")
    func losses() {
        let (R, K) = (5, 4)
        let logits = randomValues(R * K, seed: 16, scale: 3)
        let targets: [Double] = [2, -1, 0, 3, -1]
        let r: Loss.Result<Double> = Loss.crossEntropy.evaluate(logits, targets: targets, rows: R, classes: K)
        #expect(r.counted == 3)
        var expected = 0.0
        for row in [0, 2, 3] {
            let z = Array(logits[row * K ..< (row + 1) * K])
            expected += Double.log(z.reduce(0) { $0 + Double.exp($1) }) - z[Int(targets[row])]
        }
        #expect(abs(r.loss - expected / 3) <= 1e-14)
        expectGradient("cross-entropy", r.dOutputs) { i, e in
            var v = logits; v[i] += e; return (Loss.crossEntropy.evaluate(v, targets: targets, rows: R, classes: K) as Loss.Result<Double>).loss
        }
        let outputs = randomValues(R, seed: 17), values = randomValues(R, seed: 18)
        let m: Loss.Result<Double> = Loss.meanSquared.evaluate(outputs, targets: values, rows: R, classes: 1)
        expectGradient("mean squared", m.dOutputs) { i, e in
            var v = outputs; v[i] += e; return (Loss.meanSquared.evaluate(v, targets: values, rows: R, classes: 1) as Loss.Result<Double>).loss
        }
    }

    @Test("S4 (DPLR) mixer: backward = finite differences for u and every parameter")
    func s4Layer() throws {
        let (B, H, N, L) = (2, 2, 8, 13)
        let mixer = try S4Mixer<Double>(width: H, state: N, threads: 2)
        var p = try mixer.initialParameters(seed: 3)
        p["kernel.inv_dt"] = [Double.log(0.05), Double.log(0.2)]
        try expectMixerGradients(mixer, p, batch: B, length: L, seed: 19)
    }

    @Test("Mamba mixer: backward = finite differences for u and every parameter")
    func mambaMixer() throws {
        let mixer = try MambaMixer<Double>(width: 4, state: 3, threads: 2)
        try expectMixerGradients(mixer, try mixer.initialParameters(seed: 4), batch: 2, length: 7, seed: 21)
    }
}

@Suite("Channel-major LayerNorm")
struct ChannelMajorNormTests {
    /// (threads, B, C, L): L = 300 spans two of the C kernel's tiles of 256 positions and ends
    /// off its 8 lanes; L = 1 is a single position.
    @Test("forward = the row form on the transposed input; backward = finite differences",
          arguments: [(1, 3, 5, 7), (2, 3, 5, 7), (2, 2, 3, 300), (1, 1, 4, 1)])
    func matchesRowForm(_ threads: Int, _ B: Int, _ C: Int, _ L: Int) {
        let x = randomValues(B * C * L, seed: 30, scale: 2), w = randomValues(C, seed: 31), b = randomValues(C, seed: 32)
        let dY = randomValues(B * C * L, seed: 33)
        let (y, s) = LayerNorm.forwardChannelMajor(x, weight: w, bias: b, batch: B, channels: C, length: L, threads: threads)
        let rows = LayerNorm.forward(BLAS.transposed(x, batch: B, rows: C, cols: L), weight: w, bias: b, rows: B * L, channels: C).y
        let back = BLAS.transposed(rows, batch: B, rows: L, cols: C)
        #expect(zip(y, back).allSatisfy { abs($0 - $1) <= 1e-14 })
        var dX = [Double](repeating: 0, count: x.count), dW = [Double](repeating: 0, count: C), dB = dW
        LayerNorm.backwardChannelMajor(dY: dY, x: x, weight: w, statistics: s, batch: B, channels: C, length: L, dX: &dX, dWeight: &dW,
                                       dBias: &dB, threads: threads)
        let loss = { (x: [Double], w: [Double], b: [Double]) in
            weightedSum(dY, LayerNorm.forwardChannelMajor(x, weight: w, bias: b, batch: B, channels: C, length: L).y)
        }
        expectGradient("x", dX) { i, e in var v = x; v[i] += e; return loss(v, w, b) }
        expectGradient("weight", dW) { i, e in var v = w; v[i] += e; return loss(x, v, b) }
        expectGradient("bias", dB) { i, e in var v = b; v[i] += e; return loss(x, w, v) }
    }

    @Test("Float = Double to Float's rounding, forward and backward")
    func floatMatchesDouble() {
        let (B, C, L) = (2, 16, 600)
        let x = randomValues(B * C * L, seed: 34, scale: 2), w = randomValues(C, seed: 35), b = randomValues(C, seed: 36)
        let dY = randomValues(B * C * L, seed: 37)
        let f = { (v: [Double]) in v.map { Float($0) } }
        let (y, s) = LayerNorm.forwardChannelMajor(x, weight: w, bias: b, batch: B, channels: C, length: L, threads: 2)
        let (yf, sf) = LayerNorm.forwardChannelMajor(f(x), weight: f(w), bias: f(b), batch: B, channels: C, length: L, threads: 2)
        // Each output is a few roundings of Float away from the Double value (inputs rounded to Float, then one rounding of y).
        #expect(zip(y, yf).allSatisfy { abs($0 - Double($1)) <= 1e-6 * max(1, abs($0)) })
        var dX = [Double](repeating: 0, count: x.count), dW = [Double](repeating: 0, count: C), dB = dW
        LayerNorm.backwardChannelMajor(dY: dY, x: x, weight: w, statistics: s, batch: B, channels: C, length: L, dX: &dX, dWeight: &dW,
                                       dBias: &dB, threads: 2)
        var dXf = [Float](repeating: 0, count: x.count), dWf = [Float](repeating: 0, count: C), dBf = dWf
        LayerNorm.backwardChannelMajor(dY: f(dY), x: f(x), weight: f(w), statistics: sf, batch: B, channels: C, length: L, dX: &dXf,
                                       dWeight: &dWf, dBias: &dBf, threads: 2)
        #expect(zip(dX, dXf).allSatisfy { abs($0 - Double($1)) <= 1e-5 * max(1, abs($0)) })
        // dw and db are sums of B·L = 1200 terms of size ~1: their error is that of the rounded inputs.
        #expect(zip(dW + dB, dWf + dBf).allSatisfy { abs($0 - Double($1)) <= 1e-5 * max(1, abs($0)) })
    }
}

@Suite("Gate and derivative caching")
struct CachingTests {
    @Test("GLU with its gate kept = GLU; GELU with its derivative = GELU and GELU′ (vectorized exponential, ≤ 4 ulp)")
    func cachedForms() {
        let x = randomValues(3 * 2 * 40_000, seed: 40, scale: 30), dY = randomValues(3 * 40_000, seed: 41)
        let plain = GLU.forward(x, blocks: 3, half: 40_000)
        let (y, gate) = GLU.forwardWithGate(x, blocks: 3, half: 40_000, threads: 2)
        #expect(zip(plain, y).allSatisfy { abs($0 - $1) <= 4 * $0.ulp.magnitude + 1e-300 })
        var d1 = [Double](repeating: 0, count: x.count), d2 = d1
        GLU.backward(dY: dY, x: x, blocks: 3, half: 40_000, dX: &d1)
        GLU.backward(dY: dY, x: x, gate: gate, blocks: 3, half: 40_000, dX: &d2, threads: 2)
        #expect(zip(d1, d2).allSatisfy { abs($0 - $1) <= 1e-14 * max(1, abs($0)) })
        let v = randomValues(50_000, seed: 42, scale: 10)
        let (g, d) = Activation.gelu.forwardWithDerivative(v, threads: 2)
        for i in v.indices {
            #expect(abs(g[i] - gelu(v[i])) <= 4 * Swift.max(gelu(v[i]).ulp, Double.leastNormalMagnitude), "GELU(\(v[i]))")
            #expect(abs(d[i] - geluDerivative(v[i])) <= 1e-15 * Swift.max(1, abs(d[i])), "GELU′(\(v[i]))")
        }
    }

    @Test("Float GELU and GELU′ (branch-free erf in C) = the Double formulas within a few float ulp, on a sweep of [−12, 12]")
    func floatGELU() {
        // Every float step of 2^-10 on [−12, 12] (the erf fit's two pieces, their seam at |v| = √2,
        // and both tails), plus values near 0.
        let v = (-12 * 1024 ... 12 * 1024).map { Float($0) / 1024 } + [1e-30, -1e-20, 1e-6, Float.leastNormalMagnitude]
        let (g, d) = Activation.gelu.forwardWithDerivative(v, threads: 2)
        var worstValue = 0.0, worstDerivative = 0.0
        for i in v.indices {
            let (x, exact, exactDerivative) = (Double(v[i]), gelu(Double(v[i])), geluDerivative(Double(v[i])))
            // Absolute error against the scale of the terms v·Φ and Φ: erf is computed to ≤ 3 ulp of 1.
            worstValue = max(worstValue, abs(Double(g[i]) - exact) / max(abs(x), 1e-30) / Double(Float.ulpOfOne))
            worstDerivative = max(worstDerivative, abs(Double(d[i]) - exactDerivative) / max(1, abs(x)) / Double(Float.ulpOfOne))
        }
        #expect(worstValue <= 4 && worstDerivative <= 4, "GELU error \(worstValue) ulp, GELU′ \(worstDerivative) ulp")
    }
}
