import SSMKit

/// AdamW (Loshchilov & Hutter), as PyTorch's `torch.optim.AdamW`, with two parameter groups
/// (``ParameterGroup``). For each parameter p with gradient g, at step t = 1, 2, …:
///
///     p ← p − η·λ·p                       decoupled weight decay (λ = 0 for the SSM group)
///     m ← β₁·m + (1 − β₁)·g
///     v ← β₂·v + (1 − β₂)·g²
///     p ← p − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
///
/// η is the group's learning rate times the schedule's factor for the step.
public struct AdamW<T: SSMScalar>: Sendable {
    public struct Hyperparameters: Sendable, Equatable {
        public var learningRate: Double
        /// The SSM group's learning rate (the official S4 examples: min(lr, 1e-3)).
        public var ssmLearningRate: Double
        public var weightDecay: Double
        public var beta1: Double, beta2: Double, epsilon: Double

        public init(learningRate: Double, ssmLearningRate: Double? = nil, weightDecay: Double = 0.01,
                    beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) throws(SSMError) {
            for (name, v) in [("lr", learningRate), ("ssm_lr", ssmLearningRate ?? learningRate), ("weight_decay", weightDecay),
                              ("epsilon", epsilon)] where !(v.isFinite && v >= 0) {
                throw SSMError.value(argument: name, expected: "a finite value ≥ 0, got \(v)")
            }
            for (name, v) in [("beta1", beta1), ("beta2", beta2)] where !(v >= 0 && v < 1) {
                throw SSMError.value(argument: name, expected: "a value in [0, 1), got \(v)")
            }
            (self.learningRate, self.ssmLearningRate, self.weightDecay) = (learningRate, ssmLearningRate ?? learningRate, weightDecay)
            (self.beta1, self.beta2, self.epsilon) = (beta1, beta2, epsilon)
        }
    }

    public var hyperparameters: Hyperparameters
    /// Steps taken (t of the last update).
    public internal(set) var step: Int
    /// First and second moments, in the parameters' layout (PyTorch's `exp_avg`, `exp_avg_sq`).
    public internal(set) var m: ParameterSet<T>
    public internal(set) var v: ParameterSet<T>

    /// A fresh optimizer for parameters of `layout`.
    public init(_ hyperparameters: Hyperparameters, layout: ParameterSet<T>) {
        self.hyperparameters = hyperparameters
        step = 0
        m = layout.zeros()
        v = layout.zeros()
    }

    /// An optimizer with the given state (a resumed checkpoint).
    public init(_ hyperparameters: Hyperparameters, step: Int, m: ParameterSet<T>, v: ParameterSet<T>) throws(SSMError) {
        guard step >= 0, m.hasLayout(of: v) else { throw SSMError.value(argument: "optimizer", expected: "moments of one layout and step ≥ 0") }
        // The second moment is a running mean of squares: a negative one would make √v̂ a NaN.
        if let bad = v.storage.firstIndex(where: { !($0 >= 0) }) {
            throw SSMError.value(argument: "exp_avg_sq", expected: "values ≥ 0 (a running mean of squared gradients), got \(v.storage[bad]) at element \(bad)")
        }
        (self.hyperparameters, self.step, self.m, self.v) = (hyperparameters, step, m, v)
    }

    /// One update of `parameters` by `gradients`, with learning rates scaled by `scale` (the
    /// schedule's factor).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public mutating func update(_ parameters: inout ParameterSet<T>, gradients g: ParameterSet<T>, scale: Double = 1) {
        precondition(parameters.hasLayout(of: g) && parameters.hasLayout(of: m) && parameters.hasLayout(of: v),
                     "AdamW: parameters, gradients and moments differ in layout")
        let n = parameters.storage.count
        precondition(g.storage.count == n && m.storage.count == n && v.storage.count == n,
                     "AdamW: parameters, gradients and moments differ in size")
        step += 1
        let h = hyperparameters
        let correction1 = 1 - Double.pow(h.beta1, Double(step)), correction2 = 1 - Double.pow(h.beta2, Double(step))
        // One pass over the flat buffers, parameter by parameter for the group's rate and decay.
        let (beta1, beta2, epsilon) = (h.beta1, h.beta2, h.epsilon)
        let (names, ranges, groups) = (parameters.names, parameters.ranges, parameters.groups)
        g.storage.withUnsafeBufferPointer { gs in
            m.storage.withUnsafeMutableBufferPointer { ms in
                v.storage.withUnsafeMutableBufferPointer { vs in
                    parameters.storage.withUnsafeMutableBufferPointer { ps in
                        for name in names {
                            let ssm = groups[name] == .ssm
                            let lr = scale * (ssm ? h.ssmLearningRate : h.learningRate)
                            let decay = ssm ? 0 : h.weightDecay
                            for k in ranges[name]! {
                                let gk = Double(gs[k])
                                let mk = beta1 * Double(ms[k]) + (1 - beta1) * gk
                                let vk = beta2 * Double(vs[k]) + (1 - beta2) * gk * gk
                                (ms[k], vs[k]) = (T(mk), T(vk))
                                let decayed = Double(ps[k]) * (1 - lr * decay)
                                ps[k] = T(decayed - lr * (mk / correction1) / ((vk / correction2).squareRoot() + epsilon))
                            }
                        }
                    }
                }
            }
        }
    }
}

extension ParameterSet {
    /// Scales these gradients so that their global L2 norm is at most `maximum` (PyTorch
    /// `clip_grad_norm_`), and returns the norm before clipping.
    @discardableResult
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public mutating func clipNorm(maximum: Double) -> Double {
        // Summed in storage order, which is the parameters' order.
        var squares = 0.0
        for x in storage { squares += Double(x) * Double(x) }
        let norm = squares.squareRoot()
        if norm > maximum, norm.isFinite {
            let factor = T(maximum / (norm + 1e-6))
            storage.withUnsafeMutableBufferPointer { s in for i in s.indices { s[i] *= factor } }
        }
        return norm
    }
}

/// Linear warmup then cosine decay towards zero: the learning-rate factor for step t
/// (1-based) of `total`, with `warmup` warmup steps:
///
///     t ≤ warmup:  t / warmup
///     otherwise:   ½·(1 + cos(π·(t − 1 − warmup)/(total − warmup)))
///
/// The first step after warmup has the full rate and every step a positive one (the last
/// ½·(1 + cos(π·(1 − 1/(total − warmup))))): a run of one step trains.
public struct CosineSchedule: Sendable, Equatable {
    public let warmup: Int
    public let total: Int

    public init(warmup: Int, total: Int) throws(SSMError) {
        guard total >= 1, warmup >= 0, warmup <= total else {
            throw SSMError.value(argument: "warmup, steps", expected: "0 ≤ warmup ≤ steps and steps ≥ 1, got (\(warmup), \(total))")
        }
        (self.warmup, self.total) = (warmup, total)
    }

    public func factor(step t: Int) -> Double {
        if t <= warmup { return Double(t) / Double(max(warmup, 1)) }
        let progress = Double(t - 1 - warmup) / Double(max(total - warmup, 1))
        return 0.5 * (1 + Double.cos(.pi * min(progress, 1)))
    }
}
