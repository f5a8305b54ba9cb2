import Testing
@testable import SSMKit

@Suite("safetensors")
struct SafeTensorsTests {
    /// A file built by hand: 8-byte length, header text, data.
    func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + h + data
    }

    @Test("F32 and F64 tensors round-trip bit for bit, with metadata and odd names")
    func roundTrip() throws {
        let a = Tensor<Float>(shape: [2, 3], scalars: [1, -2, .pi, 0, -0.0, .leastNonzeroMagnitude])
        let b = Tensor<Double>(shape: [4], scalars: [1e-300, -1, .pi, .greatestFiniteMagnitude])
        let empty = Tensor<Double>(shape: [0, 5], scalars: [])
        let scalar = Tensor<Float>(shape: [], scalars: [42])
        let bytes = try SafeTensorsFile.encode(
            [("in_proj.weight", .init(a)), ("b \"quoted\"\n", .init(b)), ("empty", .init(empty)), ("s", .init(scalar))],
            metadata: ["format": "pt"])
        #expect(bytes.count % 8 == (4 * 6 + 8 * 4 + 4) % 8, "header padded to 8 bytes")
        let f = try SafeTensorsFile(bytes: bytes)
        #expect(f.metadata == ["format": "pt"])
        #expect(f.names == ["in_proj.weight", "b \"quoted\"\n", "empty", "s"])
        #expect(try f.tensor("in_proj.weight", as: Float.self).scalars.map(\.bitPattern) == a.scalars.map(\.bitPattern))
        #expect(try f.tensor("b \"quoted\"\n", as: Double.self) == b)
        #expect(try f.tensor("empty", as: Double.self) == empty)
        #expect(try f.tensor("s", as: Float.self) == scalar)
        #expect(try f.tensor("in_proj.weight", as: Double.self).scalars == a.scalars.map(Double.init))
    }

    @Test("F16 and BF16 widen to Float exactly")
    func halfPrecision() throws {
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 0x0001, inf 0x7C00.
        let f16: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00]
        // BF16: upper halves of float32 1.0, -2.5, 3.0e38-ish.
        let bf16: [UInt16] = [0x3F80, 0xC020, 0x7F61]
        var data: [UInt8] = []
        for v in f16 + bf16 { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        let header = #"{"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[10,16]}}"#
        let f = try SafeTensorsFile(bytes: file(header: header, data: data))
        #expect(try f.tensor("h", as: Float.self).scalars == [1, -2, 65504, 0x1p-24, .infinity])
        #expect(try f.tensor("b", as: Float.self).scalars
            == bf16.map { Float(bitPattern: UInt32($0) << 16) })
    }

    @Test("integer and BOOL tensors read exactly, at their extremes; I64 round-trips; floats and integers are not mixed")
    func integers() throws {
        var data: [UInt8] = []
        func put<V: FixedWidthInteger>(_ values: [V]) { for v in values { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } } }
        put([Int8.min, -1, .max]); put([UInt8(0), 255]); put([UInt8(0), 1])               // 3 + 2 + 2 bytes
        put([Int16.min, .max]); put([UInt16.max])                                         // 4 + 2
        put([Int32.min, .max]); put([UInt32.max])                                         // 8 + 4
        put([Int64.min, .max]); put([UInt64(7)])                                          // 16 + 8
        let names: [(String, String, Int)] = [("i8", "I8", 3), ("u8", "U8", 2), ("b", "BOOL", 2), ("i16", "I16", 2), ("u16", "U16", 1),
                                              ("i32", "I32", 2), ("u32", "U32", 1), ("i64", "I64", 2), ("u64", "U64", 1)]
        var offset = 0, fields: [String] = []
        for (name, dtype, n) in names {
            let size = SafeTensorsDType(rawValue: dtype)!.size * n
            fields.append(#""\#(name)":{"dtype":"\#(dtype)","shape":[\#(n)],"data_offsets":[\#(offset),\#(offset + size)]}"#)
            offset += size
        }
        let f = try SafeTensorsFile(bytes: file(header: "{" + fields.joined(separator: ",") + "}", data: data))
        #expect(try f.integers("i8").values == [-128, -1, 127])
        #expect(try f.integers("u8").values == [0, 255])
        #expect(try f.integers("b").values == [0, 1])
        #expect(try f.integers("i16").values == [-32768, 32767])
        #expect(try f.integers("u16").values == [65535])
        #expect(try f.integers("i32").values == [Int(Int32.min), Int(Int32.max)])
        #expect(try f.integers("u32").values == [Int(UInt32.max)])
        #expect(try f.integers("i64").values == [Int.min, Int.max])
        #expect(try f.integers("u64") == ([1], [7]))
        #expect(throws: SafeTensorsError.dtypeMismatch(source: "<memory>", tensor: "i32", dtype: .i32, expected: "F32")) {
            try f.tensor("i32", as: Float.self)
        }
        let ids = try SafeTensorsFile(bytes: SafeTensorsFile.encode([("input_ids", .int64(shape: [2, 2], values: [0, -1, 50279, Int.max])),
                                                                     ("x", .init(Tensor<Float>(shape: [1], scalars: [1])))]))
        #expect(try ids.integers("input_ids") == ([2, 2], [0, -1, 50279, Int.max]))
        #expect(throws: SafeTensorsError.dtypeMismatch(source: "<memory>", tensor: "x", dtype: .f32, expected: "an integer or BOOL dtype")) {
            try ids.integers("x")
        }
        #expect(throws: SafeTensorsError.invalidShape(source: "<memory>", tensor: "n", reason: "shape [3] does not hold 2 values")) {
            try SafeTensorsFile.encode([("n", .int64(shape: [3], values: [1, 2]))])
        }
        // Negative extents whose product is the count are no shape either.
        #expect(throws: SafeTensorsError.invalidShape(source: "<memory>", tensor: "n", reason: "shape [-1, -2] does not hold 2 values")) {
            try SafeTensorsFile.encode([("n", .int64(shape: [-1, -2], values: [1, 2]))])
        }
        // A U64 above Int.max is refused, not wrapped.
        var big: [UInt8] = []
        withUnsafeBytes(of: UInt64.max.littleEndian) { big.append(contentsOf: $0) }
        let g = try SafeTensorsFile(bytes: file(header: #"{"u":{"dtype":"U64","shape":[1],"data_offsets":[0,8]}}"#, data: big))
        #expect(throws: SafeTensorsError.self) { try g.integers("u") }
    }

    @Test("a file read from a path is mapped: tensors equal the in-memory reading; an empty file is truncated")
    func mapped() throws {
        let path = "/tmp/ssmkit-test-map-\(UInt32.random(in: 0 ... .max)).safetensors"
        defer { unlinkFile(path) }
        let t = Tensor<Float>(shape: [3, 5], scalars: (0 ..< 15).map { Float($0) * 0.25 - 1 })
        try SafeTensorsFile.write([("t", .init(t)), ("ids", .int64(shape: [4], values: [3, 1, 4, 1]))], metadata: ["k": "v"], to: path)
        let f = try SafeTensorsFile(path: path)
        #expect(try f.tensor("t", as: Float.self) == t)
        #expect(try f.integers("ids").values == [3, 1, 4, 1])
        #expect(f.metadata == ["k": "v"])
        try FileIO.writeAtomically([], to: path)
        #expect(throws: SafeTensorsError.truncated(source: path, size: 0)) { try SafeTensorsFile(path: path) }
    }

    static let f32x2 = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    /// Hostile or malformed files, each with the error it must give.
    static let malformed: [(String, [UInt8], @Sendable (SafeTensorsError) -> Bool)] = {
        let t = SafeTensorsTests()
        let eight = [UInt8](repeating: 0, count: 8)
        func is_(_ f: @escaping @Sendable (SafeTensorsError) -> Bool) -> @Sendable (SafeTensorsError) -> Bool { f }
        return [
            ("empty file", [], is_ { if case .truncated = $0 { true } else { false } }),
            ("five bytes", [1, 2, 3, 4, 5], is_ { if case .truncated = $0 { true } else { false } }),
            ("header length past the end", t.file(header: f32x2, data: eight, declaredLength: 10_000),
             is_ { if case .headerLength = $0 { true } else { false } }),
            ("header length 2^64 − 1", t.file(header: f32x2, data: eight, declaredLength: .max),
             is_ { if case .headerLength = $0 { true } else { false } }),
            ("bad JSON", t.file(header: #"{"x":{"dtype":"F32","#, data: eight),
             is_ { if case .malformedHeader = $0 { true } else { false } }),
            ("header not an object", t.file(header: "[1,2]"),
             is_ { if case .malformedHeader = $0 { true } else { false } }),
            ("duplicate key", t.file(header: #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
             is_ { if case .malformedHeader = $0 { true } else { false } }),
            ("deep nesting", t.file(header: String(repeating: "[", count: 10_000)),
             is_ { if case .malformedHeader = $0 { true } else { false } }),
            ("unknown dtype", t.file(header: #"{"x":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, data: eight),
             is_ { $0 == .unsupportedDType(source: "<memory>", tensor: "x", dtype: "C64") }),
            ("negative extent", t.file(header: #"{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight),
             is_ { if case .invalidShape = $0 { true } else { false } }),
            ("fractional extent", t.file(header: #"{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}"#, data: eight),
             is_ { if case .invalidShape = $0 { true } else { false } }),
            ("overflowing shape", t.file(header: #"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: eight),
             is_ { if case .invalidShape = $0 { true } else { false } }),
            ("offsets past the data", t.file(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: eight),
             is_ { $0 == .offsetsOutOfRange(source: "<memory>", tensor: "x", begin: 0, end: 16, dataSize: 8) }),
            ("decreasing offsets", t.file(header: #"{"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight),
             is_ { if case .offsetsOutOfRange = $0 { true } else { false } }),
            ("byte count does not match the shape", t.file(header: #"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight),
             is_ { $0 == .byteCount(source: "<memory>", tensor: "x", expected: 12, actual: 8) }),
            ("overlapping tensors", t.file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
             is_ { if case .overlap = $0 { true } else { false } }),
            ("a hole in the data", t.file(header: #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
             is_ { $0 == .unindexedBytes(source: "<memory>", offset: 0) }),
            ("trailing bytes", t.file(header: #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: eight),
             is_ { $0 == .unindexedBytes(source: "<memory>", offset: 4) }),
            ("offsets not integers", t.file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":["0",8]}}"#, data: eight),
             is_ { if case .malformedHeader = $0 { true } else { false } }),
            ("unknown entry field", t.file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"stride":[1]}}"#, data: eight),
             is_ { if case .malformedHeader = $0 { true } else { false } }),
            ("metadata value not a string", t.file(header: #"{"__metadata__":{"a":1}}"#),
             is_ { if case .malformedHeader = $0 { true } else { false } }),
            ("invalid UTF-8 in a name",
             t.file(header: #"{"\#u{FFFD}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#).map { $0 == 0xBD ? 0xFF : $0 },
             is_ { if case .malformedHeader = $0 { true } else { false } }),
        ]
    }()

    @Test("every malformed file gives its typed error", arguments: 0 ..< malformed.count)
    func malformedFiles(_ index: Int) {
        let (name, bytes, matches) = Self.malformed[index]
        do {
            _ = try SafeTensorsFile(bytes: bytes)
            Issue.record("\(name): accepted")
        } catch {
            #expect(matches(error), "\(name): got \(error)")
            #expect(!"\(error)".isEmpty)
        }
    }

    @Test("random corruption of a valid file never crashes the reader")
    func fuzz() throws {
        let valid = try SafeTensorsFile.encode([("a", .init(Tensor<Float>(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]))),
                                                ("b", .init(Tensor<Float>(shape: [1], scalars: [7])))])
        var rng = SeededGenerator(seed: 1)
        var accepted = 0
        for _ in 0 ..< 5000 {
            var bytes = valid
            for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
                bytes[Int.random(in: 0 ..< bytes.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng)
            }
            if Bool.random(using: &rng) { bytes.removeLast(Int.random(in: 0 ... 8, using: &rng)) }
            if let f = try? SafeTensorsFile(bytes: bytes) {
                accepted += 1
                for name in f.names { _ = try? f.tensor(name, as: Float.self) }
            }
        }
        // Flips inside the data section leave a valid file, so some are accepted.
        #expect(accepted > 0 && accepted < 5000)
    }

    @Test("reading: a missing tensor, F64 as Float, a missing file, a directory")
    func readErrors() throws {
        let f = try SafeTensorsFile(bytes: SafeTensorsFile.encode([("d", .init(Tensor<Double>(shape: [1], scalars: [1])))]))
        #expect(throws: SafeTensorsError.missingTensor(source: "<memory>", tensor: "e")) { try f.tensor("e", as: Double.self) }
        #expect(throws: SafeTensorsError.dtypeMismatch(source: "<memory>", tensor: "d", dtype: .f64, expected: "F32")) {
            try f.tensor("d", as: Float.self)
        }
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: "/nonexistent/x.safetensors") }
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: "/tmp") }
    }

    @Test("writes are atomic: a failed write leaves the old file; duplicate names are refused")
    func atomicWrite() throws {
        let path = "/tmp/ssmkit-test-\(UInt32.random(in: 0 ... .max)).safetensors"
        defer { unlinkFile(path) }
        let t = Tensor<Double>(shape: [2], scalars: [1, 2])
        try SafeTensorsFile.write([("t", .init(t))], to: path)
        #expect(throws: SafeTensorsError.duplicateName(source: path, tensor: "t")) {
            try SafeTensorsFile.write([("t", .init(t)), ("t", .init(t))], to: path)
        }
        #expect(throws: SafeTensorsError.self) {
            try SafeTensorsFile.write([("t", .init(t))], to: "/nonexistent-dir/x.safetensors")
        }
        #expect(try SafeTensorsFile(path: path).tensor("t", as: Double.self) == t)
    }
}
