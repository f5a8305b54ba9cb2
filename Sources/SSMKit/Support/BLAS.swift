import CLAPACK

// GEMM through OpenBLAS's CBLAS, row-major, for the linear layers (Mamba's projections).
extension Float {
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                            c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Double {
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
                            c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// c (m × n) = op(a) · op(b), or c += … when `accumulate`; row-major. op(a) is m × k: `a` is
/// stored m × k, or k × m when `transposeA`; op(b) is k × n: `b` is k × n, or n × k when
/// `transposeB`. A precondition checks the counts (a programmer error, not user input).
@inlinable
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
public func matmul<T: FFTScalar>(_ a: [T], transposeA: Bool = false, _ b: [T], transposeB: Bool = false,
                          m: Int, n: Int, k: Int, into c: inout [T], accumulate: Bool = false) {
    precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n, "matmul: counts")
    guard m > 0, n > 0 else { return }
    if k == 0 {
        if !accumulate { for i in 0 ..< m * n { c[i] = 0 } }
        return
    }
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                T.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                       a: a.baseAddress!, lda: transposeA ? m : k, b: b.baseAddress!, ldb: transposeB ? k : n,
                       beta: accumulate ? 1 : 0, c: c.baseAddress!, ldc: n)
            }
        }
    }
}

/// `batch` row-major (rows × cols) matrices, each transposed to (cols × rows).
@inlinable
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
public func transposed<T: FFTScalar>(_ a: [T], batch: Int, rows: Int, cols: Int) -> [T] {
    var t = [T](repeating: 0, count: a.count)
    for b in 0 ..< batch {
        let base = b * rows * cols
        for r in 0 ..< rows {
            for c in 0 ..< cols { t[base + c * rows + r] = a[base + r * cols + c] }
        }
    }
    return t
}
