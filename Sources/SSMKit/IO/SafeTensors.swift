/// Element types of a safetensors file. The floating-point types read as ``Tensor`` values
/// (F16 and BF16 widen to Float exactly); the integer and boolean types read as
/// ``SafeTensorsFile/integers(_:)``.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f16 = "F16", bf16 = "BF16", f32 = "F32", f64 = "F64"
    case bool = "BOOL", u8 = "U8", i8 = "I8", u16 = "U16", i16 = "I16", u32 = "U32", i32 = "I32", u64 = "U64", i64 = "I64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8: 1
        case .f16, .bf16, .u16, .i16: 2
        case .f32, .u32, .i32: 4
        case .f64, .u64, .i64: 8
        }
    }

    /// Whether the type holds floating-point values.
    public var isFloatingPoint: Bool { [.f16, .bf16, .f32, .f64].contains(self) }
}

/// An error reading or writing a safetensors file. Every case names the file (`source`) and,
/// where one is at fault, the tensor.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    case unreadable(source: String, reason: String)
    case unwritable(source: String, reason: String)
    /// Fewer than the 8 bytes of the header length.
    case truncated(source: String, size: Int)
    /// The declared header length runs past the end of the file (or past the 100 MB limit).
    case headerLength(source: String, declared: UInt64, available: Int)
    /// The header is not the JSON object the format prescribes.
    case malformedHeader(source: String, reason: String)
    case unsupportedDType(source: String, tensor: String, dtype: String)
    case invalidShape(source: String, tensor: String, reason: String)
    /// `data_offsets` outside the data section, or decreasing.
    case offsetsOutOfRange(source: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// The byte range does not hold shape × element size bytes.
    case byteCount(source: String, tensor: String, expected: Int, actual: Int)
    case overlap(source: String, tensor: String, other: String)
    /// The tensors do not cover the data section exactly (a hole, or bytes past the last one).
    case unindexedBytes(source: String, offset: Int)
    case missingTensor(source: String, tensor: String)
    /// A tensor of a dtype the caller cannot take (e.g. F64 read as Float).
    case dtypeMismatch(source: String, tensor: String, dtype: SafeTensorsDType, expected: String)
    /// Two tensors with one name given to the writer.
    case duplicateName(source: String, tensor: String)

    public var description: String {
        switch self {
        case let .unreadable(s, reason): "\(s): cannot be read: \(reason)"
        case let .unwritable(s, reason): "\(s): cannot be written: \(reason)"
        case let .truncated(s, size): "\(s): \(size) bytes, too short for the 8-byte safetensors header length"
        case let .headerLength(s, declared, available):
            "\(s): header length \(declared) exceeds the \(available) bytes that follow it"
        case let .malformedHeader(s, reason): "\(s): malformed safetensors header: \(reason)"
        case let .unsupportedDType(s, t, dtype):
            "\(s): tensor \(t): unsupported dtype \(dtype), expected one of \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .invalidShape(s, t, reason): "\(s): tensor \(t): invalid shape: \(reason)"
        case let .offsetsOutOfRange(s, t, b, e, size):
            "\(s): tensor \(t): data_offsets [\(b), \(e)] outside the \(size)-byte data section"
        case let .byteCount(s, t, expected, actual):
            "\(s): tensor \(t): \(actual) bytes, but its shape and dtype need \(expected)"
        case let .overlap(s, t, other): "\(s): tensor \(t): bytes overlap tensor \(other)"
        case let .unindexedBytes(s, offset): "\(s): data byte \(offset) belongs to no tensor"
        case let .missingTensor(s, t): "\(s): no tensor named \(t)"
        case let .dtypeMismatch(s, t, dtype, expected): "\(s): tensor \(t): dtype \(dtype.rawValue), expected \(expected)"
        case let .duplicateName(s, t): "\(s): tensor name \(t) given twice"
        }
    }
}

/// A scalar type that safetensors files store and SSMKit computes in.
public protocol SafeTensorsScalar: FFTScalar {
    /// The dtype this type is written as.
    static var safeTensorsDType: SafeTensorsDType { get }
    /// Whether a stored dtype converts to this type exactly.
    static func canRead(_ dtype: SafeTensorsDType) -> Bool
}

extension Float: SafeTensorsScalar {
    public static var safeTensorsDType: SafeTensorsDType { .f32 }
    public static func canRead(_ dtype: SafeTensorsDType) -> Bool { dtype.isFloatingPoint && dtype != .f64 }
}

extension Double: SafeTensorsScalar {
    public static var safeTensorsDType: SafeTensorsDType { .f64 }
    public static func canRead(_ dtype: SafeTensorsDType) -> Bool { dtype.isFloatingPoint }
}

/// A parsed safetensors file (https://github.com/huggingface/safetensors format): an 8-byte
/// little-endian header length, a JSON header mapping names to dtype, shape and byte range,
/// then the raw little-endian data.
///
/// Parsing validates everything before any tensor is read: the header length against the file
/// size, the JSON, each entry's dtype, shape and offsets, that byte counts match shapes, and
/// that the tensors tile the data section without overlaps or holes (as the reference
/// implementation requires). A hostile file yields a ``SafeTensorsError``, never a crash.
public struct SafeTensorsFile: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range within the data section.
        public let range: Range<Int>
    }

    /// Largest header accepted, as the reference implementation.
    public static let maximumHeaderLength = 100_000_000

    /// Where the bytes came from, for messages.
    public let source: String
    /// Entries in the order of their data.
    public let entries: [Entry]
    public let metadata: [String: String]
    private let bytes: ReadOnlyBytes
    private let dataStart: Int
    private let index: [String: Int]

    /// Maps and validates the file at `path`.
    public init(path: String) throws(SafeTensorsError) {
        let bytes: ReadOnlyBytes
        do { bytes = try ReadOnlyBytes(mapping: path) } catch {
            throw .unreadable(source: path, reason: error.reason)
        }
        try self.init(storage: bytes, source: path)
    }

    /// Validates `bytes` as a safetensors file.
    public init(bytes: [UInt8], source: String = "<memory>") throws(SafeTensorsError) {
        try self.init(storage: ReadOnlyBytes(copying: bytes), source: source)
    }

    private init(storage bytes: ReadOnlyBytes, source: String) throws(SafeTensorsError) {
        self.source = source
        self.bytes = bytes
        guard bytes.count >= 8 else { throw .truncated(source: source, size: bytes.count) }
        let declared = UInt64(littleEndian: bytes.base.loadUnaligned(as: UInt64.self))
        let available = bytes.count - 8
        guard declared <= UInt64(available) else { throw .headerLength(source: source, declared: declared, available: available) }
        guard declared <= UInt64(Self.maximumHeaderLength) else {
            throw .malformedHeader(source: source, reason: "header length \(declared) exceeds the reader's limit of \(Self.maximumHeaderLength) bytes")
        }
        let headerLength = Int(declared)
        dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart
        let json: JSONValue
        do { json = try JSONParser.parse(Array(UnsafeRawBufferPointer(start: bytes.base + 8, count: headerLength)), nonFiniteNumbers: false) } catch {
            throw .malformedHeader(source: source, reason: "\(error.reason) at byte \(error.offset) of the header")
        }
        guard case let .object(members) = json else {
            throw .malformedHeader(source: source, reason: "not a JSON object")
        }
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(pairs) = value else {
                    throw .malformedHeader(source: source, reason: "__metadata__ is not an object of strings")
                }
                for (key, v) in pairs {
                    guard case let .string(text) = v else {
                        throw .malformedHeader(source: source, reason: "__metadata__ value \(key) is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try Self.entry(name, value, dataSize: dataSize, source: source))
        }
        // The tensors must tile [0, dataSize): sorted by offset, each starts where the last ended.
        entries.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var end = 0
        for (k, e) in entries.enumerated() {
            if e.range.lowerBound < end { throw .overlap(source: source, tensor: e.name, other: entries[k - 1].name) }
            if e.range.lowerBound > end { throw .unindexedBytes(source: source, offset: end) }
            end = e.range.upperBound
        }
        if end != dataSize { throw .unindexedBytes(source: source, offset: end) }
        self.entries = entries
        self.metadata = metadata
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    private static func entry(_ name: String, _ value: JSONValue, dataSize: Int,
                              source: String) throws(SafeTensorsError) -> Entry {
        guard case let .object(fields) = value else {
            throw .malformedHeader(source: source, reason: "entry \(name) is not an object")
        }
        func field(_ key: String) throws(SafeTensorsError) -> JSONValue {
            guard let v = fields.first(where: { $0.key == key })?.value else {
                throw .malformedHeader(source: source, reason: "entry \(name) has no \(key)")
            }
            return v
        }
        if let extra = fields.first(where: { !["dtype", "shape", "data_offsets"].contains($0.key) }) {
            throw .malformedHeader(source: source, reason: "entry \(name) has an unknown field \(extra.key)")
        }
        guard case let .string(dtypeName) = try field("dtype") else {
            throw .malformedHeader(source: source, reason: "entry \(name): dtype is not a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw .unsupportedDType(source: source, tensor: name, dtype: dtypeName)
        }
        guard case let .array(dims) = try field("shape") else {
            throw .invalidShape(source: source, tensor: name, reason: "not an array")
        }
        var shape: [Int] = []
        var elements = 1
        for d in dims {
            guard let extent = d.nonNegativeInteger else {
                throw .invalidShape(source: source, tensor: name, reason: "extents must be non-negative integers")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow, product <= Int.max / 8 else {
                throw .invalidShape(source: source, tensor: name, reason: "element count overflows")
            }
            shape.append(extent)
            elements = product
        }
        guard case let .array(offsets) = try field("data_offsets"), offsets.count == 2,
              let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger
        else {
            throw .malformedHeader(source: source, reason: "entry \(name): data_offsets is not two non-negative integers")
        }
        guard begin <= end, end <= dataSize else {
            throw .offsetsOutOfRange(source: source, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }
        guard end - begin == elements * dtype.size else {
            throw .byteCount(source: source, tensor: name, expected: elements * dtype.size, actual: end - begin)
        }
        return Entry(name: name, dtype: dtype, shape: shape, range: begin ..< end)
    }

    /// Names of the tensors, in the order of their data.
    public var names: [String] { entries.map(\.name) }

    /// The entry called `name`, if any.
    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The tensor `name` converted to `T` (F16/BF16/F32 → Float; any → Double).
    /// - Throws: ``SafeTensorsError/missingTensor(source:tensor:)``, or
    ///   ``SafeTensorsError/dtypeMismatch(source:tensor:dtype:expected:)`` for F64 read as Float.
    public func tensor<T: SafeTensorsScalar>(_ name: String, as type: T.Type = T.self) throws(SafeTensorsError) -> Tensor<T> {
        guard let e = entry(name) else { throw .missingTensor(source: source, tensor: name) }
        guard T.canRead(e.dtype) else {
            throw .dtypeMismatch(source: source, tensor: name, dtype: e.dtype, expected: T.safeTensorsDType.rawValue)
        }
        let count = e.range.count / e.dtype.size
        let base = bytes.base + dataStart + e.range.lowerBound
        let scalars = [T](unsafeUninitializedCapacity: count) { out, initialized in
            for k in 0 ..< count { out[k] = Self.decode(base, k, e.dtype) }
            initialized = count
        }
        return Tensor(shape: e.shape, scalars: scalars)
    }

    /// Converts the floating-point tensor `name` into the caller's buffer (of exactly its
    /// element count), with no intermediate copy: how a large checkpoint is loaded.
    /// - Throws: as ``tensor(_:as:)``, and ``SafeTensorsError/byteCount(source:tensor:expected:actual:)``
    ///   when `destination` does not hold the tensor's element count.
    public func read<T: SafeTensorsScalar>(_ name: String, into destination: UnsafeMutableBufferPointer<T>) throws(SafeTensorsError) {
        guard let e = entry(name) else { throw .missingTensor(source: source, tensor: name) }
        guard T.canRead(e.dtype) else {
            throw .dtypeMismatch(source: source, tensor: name, dtype: e.dtype, expected: T.safeTensorsDType.rawValue)
        }
        let count = e.range.count / e.dtype.size
        guard destination.count == count else {
            throw .byteCount(source: source, tensor: name, expected: destination.count * e.dtype.size, actual: e.range.count)
        }
        let base = bytes.base + dataStart + e.range.lowerBound
        if e.dtype == T.safeTensorsDType, 1.littleEndian == 1 {
            // Little-endian storage on a little-endian machine: the bytes are the values.
            UnsafeMutableRawPointer(destination.baseAddress!).copyMemory(from: base, byteCount: e.range.count)
        } else {
            for k in 0 ..< count { destination[k] = Self.decode(base, k, e.dtype) }
        }
    }

    /// The integer or boolean tensor `name` (BOOL as 0 and 1), with its shape.
    /// - Throws: ``SafeTensorsError/missingTensor(source:tensor:)``;
    ///   ``SafeTensorsError/dtypeMismatch(source:tensor:dtype:expected:)`` for a floating-point
    ///   tensor, or a U64 value above `Int.max`.
    public func integers(_ name: String) throws(SafeTensorsError) -> (shape: [Int], values: [Int]) {
        guard let e = entry(name) else { throw .missingTensor(source: source, tensor: name) }
        guard !e.dtype.isFloatingPoint else {
            throw .dtypeMismatch(source: source, tensor: name, dtype: e.dtype, expected: "an integer or BOOL dtype")
        }
        let count = e.range.count / e.dtype.size
        let p = bytes.base + dataStart + e.range.lowerBound
        var values = [Int](repeating: 0, count: count)
        for k in 0 ..< count {
            switch e.dtype {
            case .bool, .u8: values[k] = Int(p.load(fromByteOffset: k, as: UInt8.self))
            case .i8: values[k] = Int(p.load(fromByteOffset: k, as: Int8.self))
            case .u16: values[k] = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)))
            case .i16: values[k] = Int(Int16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * k, as: Int16.self)))
            case .u32: values[k] = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)))
            case .i32: values[k] = Int(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self)))
            case .i64: values[k] = Int(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self)))
            case .u64:
                guard let v = Int(exactly: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self))) else {
                    throw .dtypeMismatch(source: source, tensor: name, dtype: e.dtype, expected: "values up to \(Int.max)")
                }
                values[k] = v
            case .f16, .bf16, .f32, .f64: break
            }
        }
        return (e.shape, values)
    }

    /// The raw little-endian bytes of tensor `name` (no copy; valid while this value lives).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer, Entry) throws -> R) throws -> R {
        guard let e = entry(name) else { throw SafeTensorsError.missingTensor(source: source, tensor: name) }
        return try body(UnsafeRawBufferPointer(start: bytes.base + dataStart + e.range.lowerBound, count: e.range.count), e)
    }

    @inline(__always)
    private static func decode<T: BinaryFloatingPoint>(_ base: UnsafeRawPointer, _ k: Int, _ dtype: SafeTensorsDType) -> T {
        switch dtype {
        case .f64:
            T(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self))))
        case .f32:
            T(Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self))))
        case .bf16:
            // bfloat16 is the upper half of a float32.
            T(Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self))) << 16))
        case .f16:
            T(halfToFloat(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self))))
        case .bool, .u8, .i8, .u16, .i16, .u32, .i32, .u64, .i64:
            preconditionFailure("an integer dtype is not decoded as a floating-point value")
        }
    }

    /// IEEE binary16 → binary32, exact (subnormals, infinities and NaNs included).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = h & 0x8000 != 0 ? -1 : 1
        let exponent = Int((h >> 10) & 0x1F)
        let fraction = Float(h & 0x3FF)
        switch exponent {
        case 0: return sign * fraction * 0x1p-24
        case 31: return fraction == 0 ? sign * .infinity : .nan
        default: return sign * (1 + fraction * 0x1p-10) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
        }
    }
}

/// One tensor to write: Float tensors are stored as F32, Double tensors as F64, integers as I64.
public enum SafeTensorsValue: Sendable {
    case float32(Tensor<Float>)
    case float64(Tensor<Double>)
    case int64(shape: [Int], values: [Int])

    public var shape: [Int] {
        switch self {
        case let .float32(t): t.shape
        case let .float64(t): t.shape
        case let .int64(shape, _): shape
        }
    }

    public var dtype: SafeTensorsDType {
        switch self {
        case .float32: .f32
        case .float64: .f64
        case .int64: .i64
        }
    }

    public init<T: SafeTensorsScalar>(_ tensor: Tensor<T>) {
        if let t = tensor as? Tensor<Float> { self = .float32(t) } else { self = .float64(tensor as! Tensor<Double>) }
    }

    fileprivate func appendBytes(to out: inout [UInt8]) {
        switch self {
        case let .float32(t): for x in t.scalars { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case let .float64(t): for x in t.scalars { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case let .int64(_, values): for x in values { withUnsafeBytes(of: Int64(x).littleEndian) { out.append(contentsOf: $0) } }
        }
    }
}

extension SafeTensorsFile {
    /// The bytes of a safetensors file holding `tensors` in the given order; the header is
    /// padded with spaces to a multiple of 8 bytes so that the data is aligned.
    public static func encode(_ tensors: [(name: String, value: SafeTensorsValue)],
                              metadata: [String: String] = [:], source: String = "<memory>") throws(SafeTensorsError) -> [UInt8] {
        var seen = Set<String>()
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\($0.key.jsonQuoted):\($0.value.jsonQuoted)" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var data: [UInt8] = []
        for (name, value) in tensors {
            guard name != "__metadata__", seen.insert(name).inserted else {
                throw .duplicateName(source: source, tensor: name)
            }
            if case let .int64(shape, values) = value {
                let (count, overflow) = shape.reduce((1, false)) { (p, d) in
                    let (m, o) = p.0.multipliedReportingOverflow(by: d)
                    return (m, p.1 || o || d < 0)
                }
                guard !overflow, count == values.count else {
                    throw .invalidShape(source: source, tensor: name, reason: "shape \(shape) does not hold \(values.count) values")
                }
            }
            let begin = data.count
            value.appendBytes(to: &data)
            let shape = value.shape.map(String.init).joined(separator: ",")
            fields.append("\(name.jsonQuoted):{\"dtype\":\"\(value.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(begin),\(data.count)]}")
        }
        var header = Array("{\(fields.joined(separator: ","))}".utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + data.count)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        return out + header + data
    }

    /// Writes `tensors` to `path` through a temporary file renamed into place: on any error
    /// nothing at `path` changes.
    public static func write(_ tensors: [(name: String, value: SafeTensorsValue)],
                             metadata: [String: String] = [:], to path: String) throws(SafeTensorsError) {
        let bytes = try encode(tensors, metadata: metadata, source: path)
        do { try FileIO.writeAtomically(bytes, to: path) } catch {
            throw .unwritable(source: path, reason: error.reason)
        }
    }
}
