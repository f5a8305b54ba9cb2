import Foundation
import Testing
@testable import SSMKit

@Suite("Streaming convolution and .npy files")
struct StreamingConvolutionTests {
    /// In-memory FFTConvolution of one channel.
    func inMemory(_ u: [Double], _ k: [Double], skip: Double) throws -> [Double] {
        let conv = try FFTConvolution<Double>(shape: ConvolutionShape(batch: 1, channels: 1, length: u.count, kernelLength: k.count),
                                              effort: .estimate)
        var y = [Double](repeating: 0, count: u.count)
        try conv.forward(u: u, kernel: k, skip: [skip], y: &y)
        return y
    }

    /// Streams u through in blocks of `feed` samples (the last one shorter).
    func streamed<T: FFTScalar>(_ u: [T], _ k: [T], skip: T, block: Int, feed: Int) throws -> [T] {
        let stream = try StreamingConvolution<T>(kernel: k, skip: skip, blockLength: block, effort: .estimate)
        var y = [T](repeating: 0, count: u.count)
        var start = 0
        u.withUnsafeBufferPointer { u in
            y.withUnsafeMutableBufferPointer { y in
                while start < u.count {
                    let n = min(feed, u.count - start)
                    stream.process(u.baseAddress! + start, count: n, into: y.baseAddress! + start)
                    start += n
                }
            }
        }
        return y
    }

    @Test("streamed = in memory (Double, ≤ 1e-12): odd L and Lk, Lk = 1, Lk a multiple of P, P = 1, a short last block",
          arguments: [(1, 1, 1), (777, 1, 16), (777, 300, 64), (1000, 256, 64), (1000, 1000, 1024), (513, 77, 1), (4099, 4099, 256)])
    func matchesInMemory(_ shape: (Int, Int, Int)) throws {
        let (L, Lk, P) = shape
        var rng = SplitMix64(seed: UInt64(L * 31 + Lk))
        let u = (0 ..< L).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let k = (0 ..< Lk).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let expected = try inMemory(u, k, skip: 0.25)
        let y = try streamed(u, k, skip: 0.25, block: P, feed: P)
        let err = zip(y, expected).reduce(0.0) { max($0, abs($1.0 - $1.1)) } / expected.reduce(0.0) { max($0, abs($1)) }
        #expect(err <= 1e-12, "L \(L) Lk \(Lk) P \(P): relative error \(err)")
    }

    @Test("Float stream at L = 2^16 with a 2^12-tap kernel agrees with the Double in-memory result to ~1e-6")
    func floatAccuracy() throws {
        let (L, Lk) = (1 << 16, 1 << 12)
        var rng = SplitMix64(seed: 5)
        let u = (0 ..< L).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let k = (0 ..< Lk).map { i in Double.random(in: -1 ..< 1, using: &rng) * Double.exp(-Double(i) / 1000) }
        let expected = try inMemory(u, k, skip: 0)
        let y = try streamed(u.map { Float($0) }, k.map { Float($0) }, skip: 0, block: 1024, feed: 1024)
        let err = zip(y, expected).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) } / expected.reduce(0.0) { max($0, abs($1)) }
        // float32 rounding of the inputs and of 16 partitions' FFT products: a few 1e-7 measured.
        #expect(err <= 1e-5, "relative error \(err)")
    }

    @Test("bad kernels and block lengths give typed errors")
    func badInput() {
        #expect(throws: SSMError.self) { try StreamingConvolution<Double>(kernel: []) }
        #expect(throws: SSMError.self) { try StreamingConvolution<Double>(kernel: [1, .nan]) }
        #expect(throws: SSMError.self) { try StreamingConvolution<Double>(kernel: [1], blockLength: 0) }
        #expect(throws: SSMError.self) { try StreamingConvolution<Double>(kernel: [1], skip: .infinity) }
    }

    @Test(".npy: write then read back (float32, float64, (L) and (H, L)); hostile headers are refused")
    func npyFiles() throws {
        let path = NSTemporaryDirectory() + "ssmkit-\(UInt32.random(in: 0 ... .max)).npy"
        defer { unlink(path) }
        for dtype in [NPYFile.DType.float32, .float64] {
            let values: [Double] = (0 ..< 14).map { Double($0) * 0.5 - 3 }
            let w = try NPYFile(writing: path, dtype: dtype, shape: [2, 7])
            try values.withUnsafeBufferPointer { p in
                try w.write(channel: 0, start: 0, count: 7, from: p.baseAddress!)
                try w.write(channel: 1, start: 0, count: 7, from: p.baseAddress! + 7)
            }
            try w.finish()
            let r = try NPYFile(reading: path)
            #expect(r.shape == [2, 7] && r.dtype == dtype)
            var back = [Double](repeating: 0, count: 5)
            try back.withUnsafeMutableBufferPointer { try r.read(channel: 1, start: 2, count: 5, into: $0.baseAddress!) }
            #expect(back == Array(values[9 ..< 14]))
        }
        func refuses(_ bytes: [UInt8], _ why: String) {
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            #expect(throws: FileError.self, "\(why)") { try NPYFile(reading: path) }
        }
        func header(_ dict: String, data: Int) -> [UInt8] {
            var h = Array(dict.utf8)
            h += [UInt8](repeating: 0x20, count: (64 - (10 + h.count + 1) % 64) % 64) + [0x0A]
            return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.count), 0] + h + [UInt8](repeating: 0, count: data)
        }
        refuses([1, 2, 3], "too short")
        refuses(Array("not a numpy file at all".utf8), "no magic")
        refuses(header("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", data: 16), "big-endian")
        refuses(header("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", data: 16), "integers")
        refuses(header("{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", data: 16), "Fortran order")
        refuses(header("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", data: 12), "truncated data")
        refuses(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 1), }", data: 16), "rank 3")
        refuses(header("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", data: 0), "empty")
        refuses(header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999,), }", data: 16), "huge shape")
    }
}
