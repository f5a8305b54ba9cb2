import SSMKit

/// The result of ``LanguageModel/perplexity(_:context:stride:)``.
public struct PerplexityResult: Sendable, Equatable {
    /// Tokens whose probability was scored.
    public var scoredTokens: Int
    /// Σ −log p(token | its window's preceding tokens), in nats.
    public var negativeLogLikelihood: Double
    /// exp(mean negative log-likelihood).
    public var perplexity: Double { Double.exp(negativeLogLikelihood / Double(max(1, scoredTokens))) }
    /// Tokens run through the model (windows overlap when stride < context).
    public var processedTokens: Int
}

extension LanguageModel {
    /// Perplexity by the standard sliding window (transformers' "perplexity of fixed-length
    /// models"): windows of `context` tokens start every `stride` tokens, each from the zero
    /// state; a window scores only the tokens past the previous window's end, each predicted
    /// from the logits at the position before it within the window (so with stride = context
    /// the first token of every window is not scored, as there).
    public func perplexity(_ ids: [Int], context: Int, stride: Int? = nil) throws(PretrainedError) -> PerplexityResult {
        let V = configuration.vocabulary
        guard context >= 2 else { throw .argument(name: "context", expected: "at least 2 tokens, got \(context)") }
        let stride = stride ?? context
        guard stride >= 1, stride <= context else { throw .argument(name: "stride", expected: "1 ... context (\(context)), got \(stride)") }
        guard ids.count >= 2 else { throw .argument(name: "text", expected: "at least 2 tokens, got \(ids.count)") }
        var result = PerplexityResult(scoredTokens: 0, negativeLogLikelihood: 0, processedTokens: 0)
        var previousEnd = 0, begin = 0
        while begin < ids.count {
            let end = min(begin + context, ids.count)
            let window = Array(ids[begin ..< end])
            let logits = try self.logits(window, batch: 1, length: window.count)
            result.processedTokens += window.count
            for t in max(previousEnd, begin + 1) ..< end {
                let row = (t - 1 - begin) * V
                var top = -Double.infinity
                for v in 0 ..< V { top = max(top, Double(logits[row + v])) }
                var sum = 0.0
                for v in 0 ..< V { sum += Double.exp(Double(logits[row + v]) - top) }
                result.negativeLogLikelihood += top + Double.log(sum) - Double(logits[row + ids[t]])
                result.scoredTokens += 1
            }
            previousEnd = end
            if end == ids.count { break }
            begin += stride
        }
        return result
    }
}
