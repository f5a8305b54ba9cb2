import Testing
@testable import SSMKit

@Suite("matrix-vector products (step mode's linear layers)")
struct MatVecTests {
    /// y = W·x by the obvious loop, in Double.
    static func reference(_ w: [Double], rows: Int, cols: Int, ld: Int, _ x: [Double]) -> [Double] {
        (0 ..< rows).map { r in (0 ..< cols).reduce(0.0) { $0 + w[r * ld + $1] * x[$1] } }
    }

    @Test("Float and Double equal the reference at odd sizes, with a leading dimension, accumulating, on 1 and 2 threads",
          arguments: [(1, 1), (3, 5), (7, 1), (65, 129), (1000, 33), (300, 4096)])
    func matchesReference(rows: Int, cols: Int) {
        var rng = SplitMix64(seed: UInt64(rows * 7919 + cols))
        let ld = cols + 3
        let w = (0 ..< rows * ld).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let x = (0 ..< cols).map { _ in Double.random(in: -1 ..< 1, using: &rng) }
        let expected = Self.reference(w, rows: rows, cols: cols, ld: ld, x)
        for threads in [1, 2] {
            var y = [Double](repeating: 0, count: rows)
            BLAS.matvec(w, rows: rows, cols: cols, ld: ld, x, into: &y, threads: threads)
            #expect(zip(y, expected).allSatisfy { abs($0 - $1) <= 1e-13 * Double(cols) }, "Double \(rows)×\(cols), \(threads) threads")
            BLAS.matvec(w, rows: rows, cols: cols, ld: ld, x, into: &y, accumulate: true, threads: threads)
            #expect(zip(y, expected).allSatisfy { abs($0 - 2 * $1) <= 2e-13 * Double(cols) }, "accumulate")
            let wf = w.map(Float.init), xf = x.map(Float.init)
            var yf = [Float](repeating: 0, count: rows)
            BLAS.matvec(wf, rows: rows, cols: cols, ld: ld, xf, into: &yf, threads: threads)
            let exact = Self.reference(wf.map(Double.init), rows: rows, cols: cols, ld: ld, xf.map(Double.init))
            #expect(zip(yf, exact).allSatisfy { abs(Double($0) - $1) <= 1e-6 * Double(cols).squareRoot() * 4 }, "Float \(rows)×\(cols)")
            // bfloat16 weights: the reference on the same (rounded) weights.
            let bf = wf.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
            var yb = [Float](repeating: 0, count: rows)
            bf.withUnsafeBufferPointer { b in
                xf.withUnsafeBufferPointer { xs in
                    yb.withUnsafeMutableBufferPointer { ys in
                        BLAS.matvec(bfloat16: b.baseAddress!, rows: rows, cols: cols, ld: ld, xs.baseAddress!, into: ys.baseAddress!, threads: threads)
                    }
                }
            }
            let widened = bf.map { Double(Float(bitPattern: UInt32($0) << 16)) }
            let exactB = Self.reference(widened, rows: rows, cols: cols, ld: ld, xf.map(Double.init))
            #expect(zip(yb, exactB).allSatisfy { abs(Double($0) - $1) <= 1e-6 * Double(cols).squareRoot() * 4 }, "bf16 \(rows)×\(cols)")
        }
    }

    @Test("the bandwidth probe returns a finite positive rate")
    func bandwidth() {
        let rate = MemoryBandwidth.measure(bytes: 1 << 22, threads: 2, repeats: 1)
        #expect(rate.isFinite && rate > 1e8)
    }
}

extension BLAS {
    /// ``matvec(_:rows:cols:ld:_:into:accumulate:threads:)`` on arrays.
    static func matvec<T: FFTScalar>(_ w: [T], rows: Int, cols: Int, ld: Int, _ x: [T], into y: inout [T], accumulate: Bool = false, threads: Int) {
        w.withUnsafeBufferPointer { w in
            x.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { y in
                    matvec(w.baseAddress!, rows: rows, cols: cols, ld: ld, x.baseAddress!, into: y.baseAddress!, accumulate: accumulate, threads: threads)
                }
            }
        }
    }
}
