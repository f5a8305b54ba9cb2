import CSSMKitFiles
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A NumPy .npy array file (format versions 1, 2 and 3) of little-endian float32 or float64 in C
/// order, read and written a block at a time so that arrays larger than memory stream through.
/// Shapes are (L) or (H, L): H channels of L samples, channel-major.
public final class NPYFile {
    public enum DType: String, Sendable { case float32 = "<f4", float64 = "<f8" }

    public let path: String
    public let dtype: DType
    public let shape: [Int]
    let descriptor: Int32
    let dataOffset: Int
    let writable: Bool
    let temporaryPath: String?

    public var channels: Int { shape.count == 2 ? shape[0] : 1 }
    public var length: Int { shape.last! }
    var elementSize: Int { dtype == .float32 ? 4 : 8 }

    /// Opens `path` for reading and validates its header against the file's size.
    /// - Throws: ``FileError`` when it cannot be read or is not such an array.
    public init(reading path: String) throws(FileError) {
        self.path = path
        writable = false
        temporaryPath = nil
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileError(path: path, reason: "cannot open: \(FileIO.errnoText())") }
        descriptor = fd
        do throws(FileError) {
            var prefix = [UInt8](repeating: 0, count: 12)
            guard pread(fd, &prefix, 12, 0) == 12, prefix[0 ..< 6] == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else {
                throw FileError(path: path, reason: "not a .npy file (no \\x93NUMPY magic)")
            }
            let major = prefix[6]
            let (lengthBytes, headerLength): (Int, Int) = switch major {
            case 1: (2, Int(prefix[8]) | Int(prefix[9]) << 8)
            case 2, 3: (4, Int(prefix[8]) | Int(prefix[9]) << 8 | Int(prefix[10]) << 16 | Int(prefix[11]) << 24)
            default: throw FileError(path: path, reason: "unsupported .npy version \(major)")
            }
            guard headerLength <= 1 << 20 else { throw FileError(path: path, reason: "header of \(headerLength) bytes (limit 1 MiB)") }
            var header = [UInt8](repeating: 0, count: headerLength)
            guard pread(fd, &header, headerLength, off_t(8 + lengthBytes)) == headerLength else {
                throw FileError(path: path, reason: "truncated header")
            }
            let text = String(decoding: header, as: UTF8.self)
            let (type, extents) = try Self.parse(text, path: path)
            let offset = 8 + lengthBytes + headerLength
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw FileError(path: path, reason: "cannot stat: \(FileIO.errnoText())") }
            let expected = offset + extents.reduce(1, *) * (type == .float32 ? 4 : 8)
            guard Int(info.st_size) == expected else {
                throw FileError(path: path, reason: "\(info.st_size) bytes, expected \(expected) for shape \(extents)")
            }
            // Every check is done before the last property is set: a throw above leaves the
            // object uninitialized (no deinit), so the descriptor is closed once, below.
            (dtype, shape, dataOffset) = (type, extents, offset)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Parses the header dictionary: descr, fortran_order, shape.
    static func parse(_ text: String, path: String) throws(FileError) -> (DType, [Int]) {
        func value(_ key: String) -> Substring? {
            guard let range = text.firstRange(of: "'\(key)':") else { return nil }
            return text[range.upperBound...].drop { $0 == " " }
        }
        guard let descr = value("descr"), let quote = descr.dropFirst().firstIndex(of: "'"),
              let dtype = DType(rawValue: String(descr[descr.index(after: descr.startIndex) ..< quote])) else {
            throw FileError(path: path, reason: "dtype must be little-endian float32 ('<f4') or float64 ('<f8')")
        }
        guard let order = value("fortran_order"), order.hasPrefix("False") else {
            throw FileError(path: path, reason: "Fortran-ordered arrays are not supported (save with C order)")
        }
        guard let shapeText = value("shape"), shapeText.hasPrefix("("), let close = shapeText.firstIndex(of: ")") else {
            throw FileError(path: path, reason: "no shape in the header")
        }
        let items = shapeText[shapeText.index(after: shapeText.startIndex) ..< close].split(separator: ",")
            .map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        let shape = items.compactMap { Int($0) }
        guard shape.count == items.count, (1 ... 2).contains(shape.count), shape.allSatisfy({ $0 >= 1 }),
              shape.reduce(1, { $0.multipliedReportingOverflow(by: $1).overflow ? .max : $0 * $1 }) < 1 << 40 else {
            throw FileError(path: path, reason: "shape must be (L) or (H, L) with positive sizes, got (\(items.joined(separator: ", ")))")
        }
        return (dtype, shape)
    }

    /// Creates `path` for an array of `shape` (written to a temporary file beside it, renamed
    /// into place by ``finish()``, removed by `discard()`: nothing half-written at `path`).
    public init(writing path: String, dtype: DType, shape: [Int]) throws(FileError) {
        precondition((1 ... 2).contains(shape.count), "NPYFile: shape \(shape)")
        self.path = path
        self.dtype = dtype
        self.shape = shape
        writable = true
        let temporary = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        temporaryPath = temporary
        let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw FileError(path: path, reason: "cannot create \(temporary): \(FileIO.errnoText())") }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(\(shape[0]), \(shape[1]))"
        var header = Array("{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        let total = (10 + header.count + 1 + 63) / 64 * 64
        header += [UInt8](repeating: 0x20, count: total - 10 - header.count - 1) + [0x0A]
        let prefix: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)]
        let bytes = prefix + header
        if let failure = bytes.withUnsafeBytes({ FileIO.transferAll(fd, UnsafeMutableRawPointer(mutating: $0.baseAddress!), bytes.count, at: 0, write: true) }) {
            // Not yet initialized (no deinit): the descriptor and the file are released here.
            close(fd)
            unlink(temporary)
            throw FileError(path: path, reason: "cannot write the header: \(failure)")
        }
        (descriptor, dataOffset) = (fd, total)
    }

    deinit {
        close(descriptor)
        if let temporaryPath, !finished { unlink(temporaryPath) }
    }

    /// Reads samples [start, start + count) of channel `channel` as T.
    public func read<T: FFTScalar>(channel: Int, start: Int, count: Int, into out: UnsafeMutablePointer<T>) throws(FileError) {
        try transfer(channel: channel, start: start, count: count) { (raw: UnsafeMutableRawPointer, bytes: Int, offset: off_t) throws(FileError) in
            if let failure = FileIO.transferAll(descriptor, raw, bytes, at: Int(offset), write: false) { throw FileError(path: path, reason: failure) }
            for i in 0 ..< count {
                out[i] = dtype == .float32 ? T(Float(bitPattern: UInt32(littleEndian: raw.load(fromByteOffset: 4 * i, as: UInt32.self))))
                    : T(Double(bitPattern: UInt64(littleEndian: raw.load(fromByteOffset: 8 * i, as: UInt64.self))))
            }
        }
    }

    /// Writes `count` samples of channel `channel` from `start`.
    public func write<T: FFTScalar>(channel: Int, start: Int, count: Int, from values: UnsafePointer<T>) throws(FileError) {
        precondition(writable, "NPYFile: \(path) was opened for reading")
        try transfer(channel: channel, start: start, count: count) { (raw: UnsafeMutableRawPointer, bytes: Int, offset: off_t) throws(FileError) in
            for i in 0 ..< count {
                if dtype == .float32 {
                    raw.storeBytes(of: Float(values[i]).bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                } else {
                    raw.storeBytes(of: Double(values[i]).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self)
                }
            }
            if let failure = FileIO.transferAll(descriptor, raw, bytes, at: Int(offset), write: true) { throw FileError(path: path, reason: failure) }
        }
    }

    private func transfer(channel: Int, start: Int, count: Int,
                          _ body: (UnsafeMutableRawPointer, Int, off_t) throws(FileError) -> Void) throws(FileError) {
        precondition(channel >= 0 && channel < channels && start >= 0 && count >= 0 && start + count <= length, "NPYFile: range")
        let bytes = count * elementSize
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 16)
        defer { raw.deallocate() }
        try body(raw, bytes, off_t(dataOffset + (channel * length + start) * elementSize))
    }

    /// Flushes and renames the written file into place.
    public func finish() throws(FileError) {
        guard let temporaryPath else { return }
        guard fsync(descriptor) == 0 else { throw FileError(path: path, reason: "fsync failed: \(FileIO.errnoText())") }
        guard rename(temporaryPath, path) == 0 else { throw FileError(path: path, reason: "cannot rename into place: \(FileIO.errnoText())") }
        finished = true
        _ = ssm_sync_directory(FileIO.parentDirectory(path))
    }

    var finished = false
}

extension Substring {
    var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
