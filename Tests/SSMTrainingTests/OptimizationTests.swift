import Foundation
import Testing
import SSMKit
@testable import SSMTraining

@Suite("Optimization")
struct OptimizationTests {
    @Test("AdamW = the PyTorch update written out for one scalar, per group, over 3 steps with a schedule")
    func adamW() throws {
        var p = ParameterSet<Double>()
        p.add("w", shape: [2], values: [0.5, -1.5])
        p.add("log_dt", shape: [1], group: .ssm, values: [0.25])
        let h = try AdamW<Double>.Hyperparameters(learningRate: 0.1, ssmLearningRate: 0.01, weightDecay: 0.2, beta1: 0.8, beta2: 0.9, epsilon: 1e-3)
        var opt = AdamW(h, layout: p)
        let grads: [[Double]] = [[0.3, -0.2, 1.0], [-0.1, 0.4, 0.5], [0.2, 0.2, -2.0]]
        let scales = [0.5, 1.0, 0.75]
        var expected = [0.5, -1.5, 0.25], m = [0.0, 0, 0], v = [0.0, 0, 0]
        for t in 1 ... 3 {
            var g = p.zeros()
            g["w"] = Array(grads[t - 1][0 ..< 2])
            g["log_dt"] = [grads[t - 1][2]]
            opt.update(&p, gradients: g, scale: scales[t - 1])
            for k in 0 ..< 3 {
                let (lr, decay) = k < 2 ? (0.1 * scales[t - 1], 0.2) : (0.01 * scales[t - 1], 0.0)
                expected[k] -= lr * decay * expected[k]
                m[k] = 0.8 * m[k] + 0.2 * grads[t - 1][k]
                v[k] = 0.9 * v[k] + 0.1 * grads[t - 1][k] * grads[t - 1][k]
                let mHat = m[k] / (1 - Double.pow(0.8, Double(t))), vHat = v[k] / (1 - Double.pow(0.9, Double(t)))
                expected[k] -= lr * mHat / (vHat.squareRoot() + 1e-3)
            }
            let got = p["w"] + p["log_dt"]
            for k in 0 ..< 3 { #expect(abs(got[k] - expected[k]) <= 1e-15, "step \(t) parameter \(k): \(got[k]) vs \(expected[k])") }
        }
        #expect(opt.step == 3)
        #expect(throws: SSMError.self) { try AdamW<Double>.Hyperparameters(learningRate: .nan) }
        #expect(throws: SSMError.self) { try AdamW<Double>.Hyperparameters(learningRate: 0.1, beta1: 1) }
        // A resumed state: a negative second moment (a hostile checkpoint) is refused by name.
        var negative = p.zeros()
        negative["log_dt"] = [-1e-3]
        #expect { try AdamW(h, step: 3, m: p.zeros(), v: negative) } throws: { "\($0)".contains("exp_avg_sq") }
        #expect(try AdamW(h, step: 3, m: p.zeros(), v: p.zeros()).step == 3)
    }

    @Test("a ParameterSet is one flat buffer: parameters in order, views in place, zeroed in one call")
    func flatLayout() throws {
        var set = ParameterSet<Double>()
        set.add("a", shape: [2, 2], values: [1, 2, 3, 4])
        set.add("b", shape: [3], group: .ssm, values: [5, 6, 7])
        #expect(set.storage == [1, 2, 3, 4, 5, 6, 7])
        #expect(set.ranges["a"] == 0 ..< 4 && set.ranges["b"] == 4 ..< 7 && set.scalarCount == 7)
        set.withUnsafeMutableBufferPointer("b") { $0[1] = -6 }
        set.accumulate("a", [10, 0, 0, 10])
        set["b"] = [set["b"][0], set["b"][1], 70]
        #expect(set.storage == [11, 2, 3, 14, 5, -6, 70])
        let z = set.zeros()
        #expect(z.hasLayout(of: set) && z.storage.allSatisfy { $0 == 0 })
        set.zero()
        #expect(set.storage == [Double](repeating: 0, count: 7))
    }

    @Test("gradient clipping scales to the maximum norm and returns the norm before")
    func clipping() {
        var g = ParameterSet<Double>()
        g.add("a", shape: [2], values: [3, 0])
        g.add("b", shape: [1], values: [4])
        #expect(g.clipNorm(maximum: 10) == 5)
        #expect(g["a"] == [3, 0])
        #expect(g.clipNorm(maximum: 1) == 5)
        let norm = (g["a"] + g["b"]).reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(norm - 1) <= 1e-6)
    }

    @Test("cosine schedule: linear warmup, full rate on the first step after it, ½ at the middle of the decay, positive on the last step")
    func schedule() throws {
        let s = try CosineSchedule(warmup: 10, total: 110)
        #expect(s.factor(step: 5) == 0.5)
        #expect(s.factor(step: 10) == 1)
        #expect(s.factor(step: 11) == 1)
        #expect(abs(s.factor(step: 61) - 0.5) <= 1e-15)
        // The last step still trains: ½(1 + cos(0.99π)).
        #expect(abs(s.factor(step: 110) - 0.5 * (1 + cos(0.99 * Double.pi))) <= 1e-15 && s.factor(step: 110) > 2e-4)
        #expect(try CosineSchedule(warmup: 0, total: 1).factor(step: 1) == 1)
        #expect(try CosineSchedule(warmup: 0, total: 2).factor(step: 2) == 0.5)
        #expect(throws: SSMError.self) { try CosineSchedule(warmup: 5, total: 4) }
    }
}
