import SSMKit

/// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json`: the tokenizer of
/// GPT-2, GPT-NeoX and every state-spaces Mamba model.
///
/// Encoding, as the `tokenizers` library does it:
/// 1. added tokens (`<|endoftext|>`, runs of spaces, …) are cut out of the text first, the
///    leftmost-longest match winning, honouring each token's `single_word`, `lstrip`,
///    `rstrip` and `normalized` flags;
/// 2. the rest is normalized (NFC, when the file says so) and cut into pieces by
///    `PreTokenizer`'s pattern;
/// 3. each piece's UTF-8 bytes are spelled in `ByteLevel`'s alphabet and merged by BPE: the
///    adjacent pair of lowest merge rank (leftmost on a tie) is merged until no pair has a
///    rank; the resulting symbols are the ids.
///
/// Decoding maps ids back to bytes (added tokens by their text) and reads them as UTF-8,
/// replacing invalid sequences with U+FFFD; ``StreamingDecoder`` does the same a token at a
/// time, holding back a character whose bytes are not all there yet.
///
/// Supported: `model.type` "BPE" (with or without `ignore_merges`, no dropout, no
/// `continuing_subword_prefix` or `end_of_word_suffix`), normalizer null or NFC (alone or in a
/// sequence), pre-tokenizer ByteLevel (with `use_regex`; `add_prefix_space` either way),
/// decoder ByteLevel, post-processor null, ByteLevel or a single-sequence TemplateProcessing.
/// Anything else is refused, naming the field.
public final class Tokenizer: Sendable {
    /// One entry of `added_tokens`.
    public struct AddedToken: Sendable, Equatable {
        public let id: Int
        public let content: String
        public let singleWord, leftStrip, rightStrip, normalized, special: Bool
    }

    /// The number of ids (the largest id + 1).
    public let vocabularySize: Int
    public let addedTokens: [AddedToken]
    /// Each id's token text (byte-level spelling, or the added token's content).
    public let tokens: [String]
    let idOfToken: [String: Int]
    /// Merge ranks by pair of ids, and the id the pair merges into.
    let merges: [UInt64: (rank: Int32, merged: Int32)]
    /// The id of each byte's one-character token.
    let byteIDs: [Int32]
    /// Each id's bytes when decoded.
    let decodedBytes: [[UInt8]]
    let normalizeNFC: Bool
    let addPrefixSpace: Bool
    let ignoreMerges: Bool
    /// Ids added around a sequence by a TemplateProcessing post-processor.
    let prefixIDs: [Int], suffixIDs: [Int]
    let addedTrie: AddedTokenTrie

    /// Reads `tokenizer.json` (the file, or a folder holding it).
    public convenience init(contentsOf path: String) throws(PretrainedError) {
        let file = try JSONFile(FileIO.isDirectory(path) ? path + "/tokenizer.json" : path)
        try self.init(json: file)
    }

    init(json file: JSONFile) throws(PretrainedError) {
        let root = file.root, path = file.path
        func fail(_ field: String, _ expected: String) -> PretrainedError { .field(file: path, field: field, expected: expected) }
        guard let model = root["model"], model.object != nil else { throw fail("model", "an object") }
        guard model["type"]?.string == "BPE" else { throw fail("model.type", "\"BPE\", got \(model["type"]?.string.map { "\"\($0)\"" } ?? "nothing")") }
        if let dropout = model["dropout"], !dropout.isNull { throw fail("model.dropout", "null (BPE dropout is not supported)") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], !v.isNull, v.string != "" { throw fail("model.\(key)", "null (not used by byte-level BPE)") }
        }
        if let v = model["byte_fallback"], v.bool == true { throw fail("model.byte_fallback", "false") }
        ignoreMerges = model["ignore_merges"]?.bool ?? false

        // The vocabulary and the added tokens.
        guard let vocab = model["vocab"]?.object else { throw fail("model.vocab", "an object from tokens to ids") }
        var idOfToken: [String: Int] = [:]
        idOfToken.reserveCapacity(vocab.count)
        // Each id indexes tables (its text, its bytes), so an id is bounded by what the file can
        // define: a file of n bytes holds fewer than n tokens, and real vocabularies are dense.
        let idLimit = min(1 << 24, max(256, file.byteCount))
        let idRange = "an id in 0 ..< \(idLimit) (below 2^24 and below the file's size, \(file.byteCount) bytes)"
        var largest = -1
        for (token, value) in vocab {
            guard let id = value.integer, id >= 0, id < idLimit else { throw fail("model.vocab.\(token)", idRange) }
            idOfToken[token] = id
            largest = max(largest, id)
        }
        var added: [AddedToken] = []
        for (k, entry) in (root["added_tokens"]?.array ?? []).enumerated() {
            guard let id = entry["id"]?.integer, id >= 0, id < idLimit, let content = entry["content"]?.string, !content.isEmpty else {
                throw fail("added_tokens[\(k)]", "an object with \(idRange) and a non-empty content")
            }
            func flag(_ key: String, _ value: Bool) -> Bool { entry[key]?.bool ?? value }
            added.append(AddedToken(id: id, content: content, singleWord: flag("single_word", false), leftStrip: flag("lstrip", false),
                                    rightStrip: flag("rstrip", false), normalized: flag("normalized", true), special: flag("special", false)))
            idOfToken[content] = id
            largest = max(largest, id)
        }
        guard largest >= 0 else { throw fail("model.vocab", "at least one token") }
        vocabularySize = largest + 1
        var tokens = [String](repeating: "", count: largest + 1)
        for (token, id) in idOfToken { tokens[id] = token }
        self.tokens = tokens
        self.idOfToken = idOfToken
        addedTokens = added
        addedTrie = AddedTokenTrie(added)

        // Every byte must have its one-character token.
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0 ..< 256 {
            guard let id = idOfToken[String(ByteLevel.characters[b])] else {
                throw fail("model.vocab", "a token for every byte (byte \(b), \"\(ByteLevel.characters[b])\", has none)")
            }
            byteIDs[b] = Int32(id)
        }
        self.byteIDs = byteIDs

        // Merges: "a b" strings (older files) or ["a", "b"] pairs.
        guard let mergeList = model["merges"]?.array else { throw fail("model.merges", "an array of merges") }
        var merges: [UInt64: (rank: Int32, merged: Int32)] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, m) in mergeList.enumerated() {
            let pair: (String, String)
            if let text = m.string {
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("model.merges[\(rank)]", "two tokens separated by one space") }
                pair = (String(parts[0]), String(parts[1]))
            } else if let two = m.array, two.count == 2, let a = two[0].string, let b = two[1].string {
                pair = (a, b)
            } else {
                throw fail("model.merges[\(rank)]", "\"a b\" or [\"a\", \"b\"]")
            }
            guard let left = idOfToken[pair.0], let right = idOfToken[pair.1], let merged = idOfToken[pair.0 + pair.1] else {
                throw fail("model.merges[\(rank)]", "tokens of the vocabulary whose concatenation is one too")
            }
            let key = UInt64(left) << 32 | UInt64(right)
            if merges[key] == nil { merges[key] = (Int32(rank), Int32(merged)) }
        }
        self.merges = merges

        // Normalizer, pre-tokenizer, decoder, post-processor.
        normalizeNFC = try Self.normalizer(root["normalizer"], fail)
        addPrefixSpace = try Self.preTokenizer(root["pre_tokenizer"], fail)
        if let decoder = root["decoder"], !decoder.isNull, decoder["type"]?.string != "ByteLevel" {
            throw fail("decoder.type", "\"ByteLevel\" or null")
        }
        (prefixIDs, suffixIDs) = try Self.postProcessor(root["post_processor"], idOfToken, fail)
        decodedBytes = tokens.map(ByteLevel.decode)
    }

    private static func normalizer(_ value: JSONValue?, _ fail: (String, String) -> PretrainedError) throws(PretrainedError) -> Bool {
        guard let value, !value.isNull else { return false }
        switch value["type"]?.string {
        case "NFC": return true
        case "Sequence":
            var nfc = false
            for (k, n) in (value["normalizers"]?.array ?? []).enumerated() {
                guard n["type"]?.string == "NFC" else { throw fail("normalizer.normalizers[\(k)].type", "\"NFC\"") }
                nfc = true
            }
            return nfc
        default: throw fail("normalizer.type", "null, \"NFC\" or a Sequence of NFC")
        }
    }

    private static func preTokenizer(_ value: JSONValue?, _ fail: (String, String) -> PretrainedError) throws(PretrainedError) -> Bool {
        var byteLevel = value
        if value?["type"]?.string == "Sequence" {
            let list = value?["pretokenizers"]?.array ?? []
            guard list.count == 1 else { throw fail("pre_tokenizer.pretokenizers", "one ByteLevel pre-tokenizer") }
            byteLevel = list[0]
        }
        guard let p = byteLevel, p["type"]?.string == "ByteLevel" else { throw fail("pre_tokenizer.type", "\"ByteLevel\"") }
        guard p["use_regex"]?.bool ?? true else { throw fail("pre_tokenizer.use_regex", "true") }
        return p["add_prefix_space"]?.bool ?? false
    }

    private static func postProcessor(_ value: JSONValue?, _ ids: [String: Int],
                                      _ fail: (String, String) -> PretrainedError) throws(PretrainedError) -> ([Int], [Int]) {
        guard let value, !value.isNull else { return ([], []) }
        switch value["type"]?.string {
        case "ByteLevel": return ([], [])
        case "TemplateProcessing":
            guard let single = value["single"]?.array else { throw fail("post_processor.single", "an array") }
            var prefix: [Int] = [], suffix: [Int] = [], seen = false
            for (k, piece) in single.enumerated() {
                if piece["Sequence"] != nil { seen = true; continue }
                guard let name = piece["SpecialToken"]?["id"]?.string, let id = ids[name] else {
                    throw fail("post_processor.single[\(k)]", "a Sequence or a SpecialToken of the vocabulary")
                }
                if seen { suffix.append(id) } else { prefix.append(id) }
            }
            return (prefix, suffix)
        default: throw fail("post_processor.type", "null, \"ByteLevel\" or \"TemplateProcessing\"")
        }
    }

    // MARK: Encoding

    /// The ids of `text`, as `tokenizers`' `encode(text)` (special tokens in the text are
    /// recognized; a TemplateProcessing post-processor adds its tokens).
    public func encode(_ text: String) -> [Int] {
        var ids = prefixIDs
        var cache: [[UInt8]: [Int32]] = [:]
        for segment in addedTrie.split(text) {
            switch segment {
            case let .added(id): ids.append(id)
            case let .text(piece): encodePlain(piece, into: &ids, cache: &cache)
            }
        }
        ids += suffixIDs
        return ids
    }

    /// Encodes text with no added tokens in it: normalize, pre-tokenize, BPE.
    func encodePlain(_ raw: Substring, into ids: inout [Int], cache: inout [[UInt8]: [Int32]]) {
        var text = String(raw)
        if normalizeNFC, text.unicodeScalars.contains(where: { $0.value >= 0x300 }) {
            // The standard library's NFC (the normalization String comparison uses).
            text = String(decoding: text._nfcCodeUnits, as: UTF8.self)
        }
        var scalars = Array(text.unicodeScalars)
        if addPrefixSpace, let first = scalars.first, first != " " { scalars.insert(" ", at: 0) }
        var bytes: [UInt8] = []
        for piece in PreTokenizer.split(scalars) {
            bytes.removeAll(keepingCapacity: true)
            for s in scalars[piece] { bytes.append(contentsOf: UTF8.encode(s)!) }
            if let known = cache[bytes] {
                for id in known { ids.append(Int(id)) }
                continue
            }
            let word = bpe(bytes)
            cache[bytes] = word
            for id in word { ids.append(Int(id)) }
        }
    }

    /// BPE on one piece's bytes: repeatedly merge the adjacent pair of lowest rank.
    func bpe(_ bytes: [UInt8]) -> [Int32] {
        if ignoreMerges, let id = idOfToken[ByteLevel.encode(bytes)] { return [Int32(id)] }
        var symbols = bytes.map { byteIDs[Int($0)] }
        while symbols.count > 1 {
            var best = Int32.max, at = -1, merged: Int32 = 0
            for k in 0 ..< symbols.count - 1 {
                if let m = merges[UInt64(UInt32(symbols[k])) << 32 | UInt64(UInt32(symbols[k + 1]))], m.rank < best {
                    (best, at, merged) = (m.rank, k, m.merged)
                }
            }
            if at < 0 { break }
            symbols[at] = merged
            symbols.remove(at: at + 1)
        }
        return symbols
    }

    // MARK: Decoding

    /// The text of `ids`, as `tokenizers`' `decode(ids, skip_special_tokens: skipSpecial)`.
    /// - Throws: ``PretrainedError/argument(name:expected:)`` for an id outside the vocabulary.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws(PretrainedError) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0, id < vocabularySize else { throw .argument(name: "ids", expected: "token ids in 0 ..< \(vocabularySize), got \(id)") }
            if skipSpecialTokens, isSpecial(id) { continue }
            bytes += decodedBytes[id]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func isSpecial(_ id: Int) -> Bool { addedTokens.contains { $0.id == id && $0.special } }

    /// The id of a token's text, if it is in the vocabulary.
    public func id(of token: String) -> Int? { idOfToken[token] }
}

/// Decodes ids one at a time into text, holding back the bytes of a character that is not yet
/// complete: what a generator prints as tokens arrive. The concatenation of everything it
/// returns (with ``finish()``) equals ``Tokenizer/decode(_:skipSpecialTokens:)`` of all the ids.
public struct StreamingDecoder: Sendable {
    public let tokenizer: Tokenizer
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// The text that `id` completes (possibly empty).
    public mutating func append(_ id: Int) throws(PretrainedError) -> String {
        guard id >= 0, id < tokenizer.vocabularySize else {
            throw .argument(name: "id", expected: "a token id in 0 ..< \(tokenizer.vocabularySize), got \(id)")
        }
        pending += tokenizer.decodedBytes[id]
        let cut = completePrefix(pending)
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Whatever is held back, decoded (an incomplete character becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the longest prefix that no later byte can change: all of it, except a
    /// final lead byte and continuation bytes that could still become one valid character.
    private func completePrefix(_ b: [UInt8]) -> Int {
        let n = b.count
        var start = n
        // Look back at most 3 bytes for the start of an unfinished character.
        var k = n - 1
        while k >= 0, k >= n - 3 {
            let byte = b[k]
            if byte & 0xC0 == 0x80 { k -= 1; continue }   // continuation
            let need = byte >= 0xF0 && byte <= 0xF4 ? 4 : byte >= 0xE0 && byte <= 0xEF ? 3 : byte >= 0xC2 && byte <= 0xDF ? 2 : 1
            if need > n - k, validPrefix(b[k...]) { start = k }
            break
        }
        return start
    }

    /// Whether `bytes` (a lead byte and continuations) can still grow into a valid character.
    private func validPrefix(_ bytes: ArraySlice<UInt8>) -> Bool {
        let lead = bytes[bytes.startIndex]
        guard bytes.count >= 2 else { return true }
        let second = bytes[bytes.startIndex + 1]
        switch lead {
        case 0xE0: return second >= 0xA0 && second <= 0xBF
        case 0xED: return second >= 0x80 && second <= 0x9F
        case 0xF0: return second >= 0x90 && second <= 0xBF
        case 0xF4: return second >= 0x80 && second <= 0x8F
        default: return second & 0xC0 == 0x80
        }
    }
}
