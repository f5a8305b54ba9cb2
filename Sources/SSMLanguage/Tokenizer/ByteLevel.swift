/// GPT-2's byte-level alphabet: every byte has a printable stand-in character, so that BPE runs
/// on text with no control or white-space characters and any byte string round-trips.
///
/// Bytes that are printable Latin-1 (`!` … `~`, `¡` … `¬`, `®` … `ÿ`) stand for themselves; the
/// other 68 (controls, space, DEL, no-break space, soft hyphen …) take U+0100, U+0101, … in
/// byte order. Space (0x20) becomes `Ġ` (U+0120), newline (0x0A) `Ċ` (U+010A).
enum ByteLevel {
    /// The stand-in of each byte.
    static let characters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0 ..< 256 {
            if (33 ... 126).contains(b) || (161 ... 172).contains(b) || (174 ... 255).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte each stand-in character stands for.
    static let bytes: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in characters.enumerated() { map[c] = UInt8(b) }
        return map
    }()

    /// The byte-level spelling of `bytes`.
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(characters[Int(b)]) }
        return String(s)
    }

    /// The bytes a token's text stands for: through the alphabet when every character is in
    /// it, else the text's own UTF-8 (an added token such as a run of spaces), as the
    /// reference decoder does.
    static func decode(_ token: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for c in token.unicodeScalars {
            guard let b = bytes[c] else { return Array(token.utf8) }
            out.append(b)
        }
        return out
    }
}
