import Testing
@testable import SSMKit
@testable import SSMLanguage

@Suite("byte-level BPE tokenizer")
struct TokenizerTests {
    static let tokenizer = Result { try Tokenizer(contentsOf: pretrainedFixtures + "/tokenizer/tokenizer.json") }

    @Test("encode and decode equal the tokenizers library on every fixture string")
    func fixtureCases() throws {
        let t = try Self.tokenizer.get()
        let cases = try #require(try fixtureJSON("tokenizer_cases.json").array)
        #expect(cases.count >= 150)
        for c in cases {
            let text = try #require(c["text"]?.string)
            let ids = try #require(c["ids"]?.array).map { $0.integer! }
            #expect(t.encode(text) == ids, "encode \(text.debugDescription)")
            #expect(try t.decode(ids) == c["decoded"]?.string, "decode \(text.debugDescription)")
        }
    }

    @Test("decoding arbitrary id sequences (split characters, specials skipped or kept) equals tokenizers")
    func decodeCases() throws {
        let t = try Self.tokenizer.get()
        let cases = try #require(try fixtureJSON("tokenizer_decode_cases.json").array)
        #expect(!cases.isEmpty)
        for c in cases {
            let ids = try #require(c["ids"]?.array).map { $0.integer! }
            #expect(try t.decode(ids) == c["decoded"]?.string, "decode \(ids)")
            #expect(try t.decode(ids, skipSpecialTokens: true) == c["decoded_skip_special"]?.string, "decode skipping \(ids)")
        }
    }

    @Test("streaming decode: the pieces, token by token, concatenate to the whole decode, and never split a character")
    func streaming() throws {
        let t = try Self.tokenizer.get()
        let cases = try #require(try fixtureJSON("tokenizer_cases.json").array)
        for c in cases {
            let ids = try #require(c["ids"]?.array).map { $0.integer! }
            var decoder = StreamingDecoder(tokenizer: t)
            var pieces: [String] = []
            for id in ids { pieces.append(try decoder.append(id)) }
            pieces.append(decoder.finish())
            #expect(pieces.joined() == (try t.decode(ids)), "stream \(ids)")
            // A piece never ends inside a character: re-encoding each piece as UTF-8 gives no
            // replacement character unless the whole decode has one.
            if !(try t.decode(ids)).contains("\u{FFFD}") {
                #expect(!pieces.contains { $0.contains("\u{FFFD}") })
            }
        }
    }

    @Test("the pre-tokenizer cuts as the GPT-2 pattern: contractions, spaces before words, white-space runs")
    func preTokenizer() {
        func pieces(_ s: String) -> [String] {
            let scalars = Array(s.unicodeScalars)
            return PreTokenizer.split(scalars).map { r in String(String.UnicodeScalarView(scalars[r])) }
        }
        #expect(pieces("it's 12 cats!!") == ["it", "'s", " 12", " cats", "!!"])
        #expect(pieces("a   b") == ["a", "  ", " b"])
        #expect(pieces("x\n\ny") == ["x", "\n", "\n", "y"])
        #expect(pieces("a  \tb") == ["a", "  ", "\t", "b"])
        #expect(pieces("  ") == ["  "])
        #expect(pieces("I'LL") == ["I", "'", "LL"])
        #expect(pieces("") == [])
    }

    @Test("bad tokenizer files are refused, naming the file and the field")
    func badFiles() throws {
        let path = temporaryPath("tokenizer.json")
        defer { _ = unlinkPath(path) }
        let cases: [(String, String)] = [
            ("{}", "model"),
            (#"{"model":{"type":"WordPiece","vocab":{}}}"#, "model.type"),
            (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"}}"#, "model.vocab"),
            ("not json", "(file)"),
        ]
        for (text, field) in cases {
            try FileIO.writeAtomically(Array(text.utf8), to: path)
            #expect {
                try Tokenizer(contentsOf: path)
            } throws: { error in
                guard case let PretrainedError.field(file, f, _) = error else { return false }
                return file == path && f == field
            }
        }
        #expect(throws: PretrainedError.self) { try Tokenizer(contentsOf: "/nonexistent/tokenizer.json") }
        // An id the file's size cannot back, in the vocabulary or among the added tokens, is
        // refused before the tables indexed by id are made.
        for text in [#"{"model":{"type":"BPE","vocab":{"a":0,"b":3000},"merges":[]}}"#,
                     #"{"added_tokens":[{"id":16777215,"content":"x"}],"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}"#] {
            try FileIO.writeAtomically(Array(text.utf8), to: path)
            #expect {
                try Tokenizer(contentsOf: path)
            } throws: { error in
                guard case let PretrainedError.field(_, field, expected) = error else { return false }
                return (field == "model.vocab.b" || field == "added_tokens[0]") && expected.contains("below the file's size")
            }
        }
        let t = try Self.tokenizer.get()
        // The fuzzer's finding (scripts/fuzz.sh tokenizer): a 5 KB file whose vocabulary holds
        // the id 4,444,858 made the reader allocate 71 MB of token tables.
        let finding = pretrainedFixtures + "/../fuzz/tokenizer-oom-5d3a317c.json"
        #expect {
            try Tokenizer(contentsOf: finding)
        } throws: { error in
            guard case let PretrainedError.field(_, field, expected) = error else { return false }
            return field.hasPrefix("model.vocab.") && expected.contains("5068 bytes")
        }
        #expect(throws: PretrainedError.self) { try t.decode([t.vocabularySize]) }
        #expect(throws: PretrainedError.self) { try t.decode([-1]) }
    }
}

