import SSMKit

/// The training objectives. Each returns the loss, its gradient with respect to the model's
/// outputs, and the counts for accuracy.
public enum Loss: String, Sendable, CaseIterable {
    /// Softmax cross-entropy over classes, averaged over the rows whose target is not −1
    /// (PyTorch `F.cross_entropy(..., ignore_index=-1)`).
    case crossEntropy
    /// Mean squared error over rows; a row counts as correct within ``regressionTolerance``.
    case meanSquared

    /// The adding problem's usual criterion: |prediction − target| < 0.04.
    public static let regressionTolerance = 0.04

    public struct Result<T: FFTScalar>: Sendable {
        public let loss: Double
        /// ∂loss/∂outputs: (R, K).
        public let dOutputs: [T]
        public let correct: Int
        public let counted: Int
    }

    /// The loss and the counts of one evaluation, without the gradient.
    public struct Summary: Sendable {
        public let loss: Double
        public let correct: Int
        public let counted: Int
    }

    /// outputs: (R, K); targets: (R) class indices (−1 to skip) for cross-entropy, or (R) real
    /// values for mean squared (K = 1).
    public func evaluate<T: FFTScalar>(_ outputs: [T], targets: [Double], rows R: Int, classes K: Int) -> Result<T> {
        precondition(outputs.count == R * K && targets.count == R, "Loss: counts")
        var d = [T](repeating: 0, count: R * K)
        let s = outputs.withUnsafeBufferPointer { o in
            d.withUnsafeMutableBufferPointer { d in evaluate(o, targets: targets, rows: R, classes: K, into: d) }
        }
        return Result(loss: s.loss, dOutputs: d, correct: s.correct, counted: s.counted)
    }

    /// ``evaluate(_:targets:rows:classes:)`` on the caller's buffers, allocating nothing: the
    /// gradient (R, K) overwrites `dOutputs` (a model's ``SequenceModel/Activations/dOutputs``).
    public func evaluate<T: FFTScalar>(_ outputs: UnsafeBufferPointer<T>, targets: [Double], rows R: Int, classes K: Int,
                                       into d: UnsafeMutableBufferPointer<T>) -> Summary {
        precondition(outputs.count == R * K && targets.count == R && d.count == R * K, "Loss: counts")
        switch self {
        case .crossEntropy:
            var counted = 0
            for r in 0 ..< R where targets[r] >= 0 { counted += 1 }
            var loss = 0.0, correct = 0
            for r in 0 ..< R {
                guard targets[r] >= 0 else {
                    for k in 0 ..< K { d[r * K + k] = 0 }
                    continue
                }
                let target = Int(targets[r])
                precondition(target < K, "Loss: target \(target) ≥ classes \(K)")
                var maximum = -Double.infinity, best = 0
                for k in 0 ..< K where Double(outputs[r * K + k]) > maximum { (maximum, best) = (Double(outputs[r * K + k]), k) }
                var sum = 0.0
                for k in 0 ..< K { sum += Double.exp(Double(outputs[r * K + k]) - maximum) }
                loss += maximum + Double.log(sum) - Double(outputs[r * K + target])
                if best == target { correct += 1 }
                for k in 0 ..< K {
                    let p = Double.exp(Double(outputs[r * K + k]) - maximum) / sum
                    d[r * K + k] = T((p - (k == target ? 1 : 0)) / Double(max(counted, 1)))
                }
            }
            return Summary(loss: loss / Double(max(counted, 1)), correct: correct, counted: counted)
        case .meanSquared:
            precondition(K == 1, "Loss: mean squared takes one output per row")
            var loss = 0.0, correct = 0
            for r in 0 ..< R {
                let e = Double(outputs[r]) - targets[r]
                loss += e * e
                d[r] = T(2 * e / Double(R))
                if abs(e) < Self.regressionTolerance { correct += 1 }
            }
            return Summary(loss: loss / Double(R), correct: correct, counted: R)
        }
    }
}
