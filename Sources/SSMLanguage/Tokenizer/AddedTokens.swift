/// Finds a tokenizer's added tokens in text: non-overlapping, leftmost-longest matches over
/// Unicode scalars, each honouring its flags (`single_word`: not inside a word; `lstrip`,
/// `rstrip`: the white space beside it belongs to the token).
struct AddedTokenTrie: Sendable {
    enum Segment { case added(Int), text(Substring) }

    private struct Node: Sendable {
        var next: [Unicode.Scalar: Int] = [:]
        var token: Int?
    }

    private var nodes = [Node()]
    private let tokens: [Tokenizer.AddedToken]

    init(_ tokens: [Tokenizer.AddedToken]) {
        self.tokens = tokens
        for (k, t) in tokens.enumerated() {
            var at = 0
            for s in t.content.unicodeScalars {
                if let n = nodes[at].next[s] { at = n } else {
                    nodes.append(Node())
                    nodes[at].next[s] = nodes.count - 1
                    at = nodes.count - 1
                }
            }
            if nodes[at].token == nil { nodes[at].token = k }
        }
    }

    private static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        s == "_" || s.properties.isAlphabetic || s.properties.numericType != nil
    }

    /// `text` cut into added tokens and the plain text between them.
    func split(_ text: String) -> [Segment] {
        guard !tokens.isEmpty else { return text.isEmpty ? [] : [.text(text[...])] }
        let scalars = text.unicodeScalars
        let indices = Array(scalars.indices) + [scalars.endIndex]
        let values = Array(scalars)
        let n = values.count
        var segments: [Segment] = []
        var plainStart = 0, i = 0
        while i < n {
            // The longest token starting at i.
            var at = 0, j = i, found: (token: Int, end: Int)?
            while j < n, let next = nodes[at].next[values[j]] {
                at = next
                j += 1
                if let t = nodes[at].token { found = (t, j) }
            }
            guard let (k, end) = found else { i += 1; continue }
            let t = tokens[k]
            if t.singleWord {
                let before = i > 0 && Self.isWordScalar(values[i - 1])
                let after = end < n && Self.isWordScalar(values[end])
                if before || after { i += 1; continue }
            }
            var start = i, stop = end
            if t.leftStrip { while start > plainStart, values[start - 1].properties.isWhitespace { start -= 1 } }
            if t.rightStrip { while stop < n, values[stop].properties.isWhitespace { stop += 1 } }
            if start > plainStart { segments.append(.text(Substring(scalars[indices[plainStart] ..< indices[start]]))) }
            segments.append(.added(t.id))
            plainStart = stop
            i = stop
        }
        if plainStart < n { segments.append(.text(Substring(scalars[indices[plainStart] ..< indices[n]]))) }
        return segments
    }
}
