/// A JSON value from a strict, small reader (safetensors headers, configuration files): RFC 8259
/// grammar, nesting limited to 64 levels, duplicate object keys rejected, object members kept
/// in file order, numbers kept as their literal text.
package enum JSONValue: Equatable, Sendable {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// Parses `bytes` as one JSON value surrounded only by white space. With
    /// `nonFiniteNumbers`, the literals `Infinity`, `-Infinity` and `NaN` that Python's `json`
    /// writes for non-finite floats are read as numbers (older transformers configs hold them).
    package static func parse(_ bytes: [UInt8], nonFiniteNumbers: Bool = false) throws(JSONParseError) -> JSONValue {
        try JSONParser.parse(bytes, nonFiniteNumbers: nonFiniteNumbers)
    }

    /// The member `key` of an object (nil for a missing key or a value that is not an object).
    package subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The string, if this is one.
    package var string: String? { if case let .string(s) = self { s } else { nil } }
    /// The number as a Double, if this is a number.
    package var double: Double? {
        guard case let .number(text) = self else { return nil }
        switch text {
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }
    /// The elements, if this is an array.
    package var array: [JSONValue]? { if case let .array(a) = self { a } else { nil } }
    /// The value as an integer that fits in `Int` (no fraction or exponent), if it is one.
    package var integer: Int? {
        guard case let .number(text) = self, !text.isEmpty else { return nil }
        let digits = text.hasPrefix("-") ? text.utf8.dropFirst() : text.utf8[...]
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(text)
    }
    /// The boolean, if this is one.
    package var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    /// Whether this is `null`.
    package var isNull: Bool { self == .null }
    /// The members in file order, if this is an object.
    package var object: [(key: String, value: JSONValue)]? { if case let .object(m) = self { m } else { nil } }

    package static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.array(x), .array(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.bool(x), .bool(y)): x == y
        case (.null, .null): true
        default: false
        }
    }

    /// The value as a non-negative integer that fits in `Int`, if it is one.
    var nonNegativeInteger: Int? {
        guard case let .number(text) = self, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 })
        else { return nil }
        return Int(text)
    }
}

/// Why a JSON text was refused, and the byte offset where the reader stopped.
package struct JSONParseError: Error, Equatable, CustomStringConvertible {
    package let offset: Int
    package let reason: String
    package var description: String { "JSON: \(reason) at byte \(offset)" }
}

struct JSONParser {
    static let maximumDepth = 64
    private let bytes: [UInt8]
    private let nonFiniteNumbers: Bool
    private var i = 0

    /// Parses `bytes` as one JSON value surrounded only by white space.
    static func parse(_ bytes: [UInt8], nonFiniteNumbers: Bool) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, nonFiniteNumbers: nonFiniteNumbers)
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        if parser.i != bytes.count { throw JSONParseError(offset: parser.i, reason: "trailing characters") }
        return value
    }

    private init(bytes: [UInt8], nonFiniteNumbers: Bool) { (self.bytes, self.nonFiniteNumbers) = (bytes, nonFiniteNumbers) }

    private mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
    }

    private func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: i, reason: reason) }

    private mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < Self.maximumDepth else { throw fail("nesting deeper than \(Self.maximumDepth)") }
        skipSpace()
        guard i < bytes.count else { throw fail("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return try number()
        }
    }

    private mutating func literal(_ word: String) throws(JSONParseError) {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i ..< i + w.count]) == w else { throw fail("invalid literal") }
        i += w.count
    }

    private mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        i += 1
        var members: [(key: String, value: JSONValue)] = []
        var keys = Set<String>()
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try string()
            guard keys.insert(key).inserted else { throw fail("duplicate key \"\(key)\"") }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        i += 1
        var elements: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
        while true {
            elements.append(try value(depth: depth + 1))
            skipSpace()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0 ..< 4 {
            let c = bytes[i]
            let d: UInt8
            switch c {
            case 48 ... 57: d = c - 48
            case 65 ... 70: d = c - 55
            case 97 ... 102: d = c - 87
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    private mutating func string() throws(JSONParseError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            i += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800 ..< 0xDC00).contains(scalar) {
                        guard i + 2 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u")
                        else { throw fail("unpaired surrogate") }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00 ..< 0xE000).contains(low) else { throw fail("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("invalid code point") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw fail("invalid escape")
                }
            case 0 ..< 0x20: throw fail("control character in string")
            default: out.append(c)
            }
        }
    }

    private mutating func number() throws(JSONParseError) -> JSONValue {
        let start = i
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        if nonFiniteNumbers, i < bytes.count, bytes[i] == UInt8(ascii: "I") || (bytes[i] == UInt8(ascii: "N") && i == start) {
            try literal(bytes[i] == UInt8(ascii: "I") ? "Infinity" : "NaN")
            return .number(String(decoding: bytes[start ..< i], as: UTF8.self))
        }
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.bytes.count, (48 ... 57).contains(p.bytes[p.i]) { p.i += 1 }
            return p.i - s
        }
        let intDigits = digits(&self)
        guard intDigits > 0 else { throw fail("invalid value") }
        if intDigits > 1, bytes[i - intDigits] == 48 { throw fail("leading zero in number") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits(&self) > 0 else { throw fail("invalid fraction") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw fail("invalid exponent") }
        }
        return .number(String(decoding: bytes[start ..< i], as: UTF8.self))
    }
}

extension String {
    /// This string as a JSON string literal, quotes included.
    package var jsonQuoted: String {
        var out = "\""
        for u in unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            // Controls, and the line separators that tools splitting lines on Unicode
            // boundaries would cut at, are escaped (still one line of valid JSON).
            case _ where u.value < 0x20 || (0x7F ... 0x9F).contains(u.value) || u.value == 0x2028 || u.value == 0x2029:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
