/// The pre-tokenizer of GPT-2 and GPT-NeoX: text is cut into pieces by the pattern
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// tried in that order at each position (contractions; an optional space and a run of
/// letters, of digits, or of other symbols; white space not followed by a non-space; any
/// white space). BPE never merges across pieces. Matching is written out by hand over Unicode
/// scalars: \p{L} is general category L*, \p{N} is N*, \s is the White_Space property.
enum PreTokenizer {
    enum Class: UInt8 { case letter, number, space, other }

    @inline(__always)
    static func classify(_ s: Unicode.Scalar) -> Class {
        let v = s.value
        if v < 128 {
            switch v {
            case 0x41 ... 0x5A, 0x61 ... 0x7A: return .letter
            case 0x30 ... 0x39: return .number
            case 0x09 ... 0x0D, 0x20: return .space
            default: return .other
            }
        }
        if s.properties.isWhitespace { return .space }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// The pieces of `scalars` as ranges, in order; together they cover the text.
    static func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(classify)
        var pieces: [Range<Int>] = []
        var i = 0
        let n = scalars.count
        func run(_ from: Int, _ c: Class) -> Int {
            var j = from
            while j < n, classes[j] == c { j += 1 }
            return j
        }
        while i < n {
            // Contractions: 's 't 'm 'd, 're 've 'll (lower case, as the pattern).
            if scalars[i] == "'", i + 1 < n {
                let a = scalars[i + 1]
                if a == "s" || a == "t" || a == "m" || a == "d" { pieces.append(i ..< i + 2); i += 2; continue }
                if i + 2 < n {
                    let b = scalars[i + 2]
                    if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { pieces.append(i ..< i + 3); i += 3; continue }
                }
            }
            // An optional space, then a run of letters, digits, or other symbols.
            let start = i
            var j = i
            if scalars[j] == " ", j + 1 < n, classes[j + 1] != .space { j += 1 }
            let c = classes[j]
            if c != .space {
                let end = run(j, c)
                pieces.append(start ..< end)
                i = end
                continue
            }
            // White space: all of it when it ends the text or precedes more white space
            // (impossible: the run is maximal), else all but the last character, which then
            // leads the next piece; a single space before a non-space is matched by \s+.
            let end = run(i, .space)
            if end == n || end - i == 1 {
                pieces.append(i ..< end)
                i = end
            } else {
                pieces.append(i ..< end - 1)
                i = end - 1
            }
        }
        return pieces
    }
}
