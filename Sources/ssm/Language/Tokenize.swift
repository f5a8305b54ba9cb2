import ArgumentParser
import SSMKit
import SSMLanguage

/// `ssm tokenize`: encode text to ids or decode ids to text with a tokenizer.json.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode text to token ids, or decode ids to text, with a byte-level BPE tokenizer.json.",
        discussion: """
        Exactly one of --text, --decode, --file or --batch. With --json the last line is one \
        JSON object: {"ids": [...]} for --text, {"text": ...} for --decode, {"count", "bytes", \
        "seconds", "tokens_per_second"} for --file (the encode timed, best of 3); --batch reads \
        one JSON string per line and writes one {"ids", "text"} object per line (text = the \
        decode of ids).
        """
    )

    @Option(name: .long, help: "tokenizer.json, or a folder holding it.")
    var tokenizer: String

    @Option(name: .long, help: "Text to encode.")
    var text: String?

    @Option(name: .long, help: "Comma-separated token ids to decode.")
    var decode: String?

    @Option(name: .long, help: "A UTF-8 text file to encode (prints the count and the speed).")
    var file: String?

    @Option(name: .long, help: "A file of JSON strings, one per line, each encoded and decoded back.")
    var batch: String?

    @Flag(name: .long, help: "Print one JSON object as the last line.")
    var json = false

    @Flag(name: .long, help: "With --decode: leave out special tokens.")
    var skipSpecialTokens = false

    func validate() throws {
        let given = [text != nil, decode != nil, file != nil, batch != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --text, --decode, --file, --batch") }
    }

    func run() throws {
        let t = try Tokenizer(contentsOf: tokenizer)
        if let text {
            let ids = t.encode(text)
            print(json ? jsonLine([("ids", ids)]) : ids.map(String.init).joined(separator: ","))
        } else if let decode {
            let text = try t.decode(try parseIDs(decode, flag: "--decode"), skipSpecialTokens: skipSpecialTokens)
            print(json ? jsonLine([("text", text)]) : text)
        } else if let file {
            let bytes = try FileIO.readAll(file)
            let text = String(decoding: bytes, as: UTF8.self)
            var ids: [Int] = []
            var best = Double.infinity
            for _ in 0 ..< 3 { best = min(best, seconds { ids = t.encode(text) }) }
            if json {
                print(jsonLine([("count", ids.count), ("bytes", bytes.count), ("seconds", best), ("tokens_per_second", Double(ids.count) / best)]))
            } else {
                print("\(ids.count) tokens from \(bytes.count) bytes in \(formatFixed(best * 1000, 1)) ms: \(formatFixed(Double(ids.count) / best, 0)) tokens/s")
            }
        } else if let batch {
            let bytes = try FileIO.readAll(batch)
            for (k, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
                guard let text = (try? JSONValue.parse(Array(line)))?.string else {
                    throw SSMError.option(name: "--batch", expected: "one JSON string per line (line \(k + 1) is not)")
                }
                let ids = t.encode(text)
                print(jsonLine([("ids", ids), ("text", try t.decode(ids))]))
            }
        }
    }
}
