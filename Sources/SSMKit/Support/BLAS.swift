import CSSMKitBLAS

// GEMM through OpenBLAS's CBLAS, row-major, for the linear layers (Mamba's projections).

/// Process-wide state: the first GEMM that SSMKit runs calls `openblas_set_num_threads(1)`,
/// which holds for the whole process, this library's callers included. OpenBLAS's own threads
/// spin in `sched_yield` while they wait, which on a small machine steals the cores from
/// SSMKit's workers (measured: a third of a Mamba training step in the scheduler), so
/// ``BLAS/matmul(_:transposeA:_:transposeB:m:n:k:into:accumulate:threads:)`` splits large
/// products over SSMKit's worker pool instead. A program that wants OpenBLAS threads for its
/// own GEMMs sets them again after SSMKit's first GEMM.
let openBLASSingleThreaded: Void = openblas_set_num_threads(1)

/// Matrix products and transposes on flat row-major arrays, split over SSMKit's worker pool.
public enum BLAS {}

extension Float {
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                            c: UnsafeMutablePointer<Float>, ldc: Int) {
        openBLASSingleThreaded
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Double {
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
                            c: UnsafeMutablePointer<Double>, ldc: Int) {
        openBLASSingleThreaded
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// c (m × n) = op(a) · op(b), or c += … when `accumulate`; row-major. op(a) is m × k: `a` is
/// stored m × k, or k × m when `transposeA`; op(b) is k × n: `b` is k × n, or n × k when
/// `transposeB`. A precondition checks the counts (a programmer error, not user input).
///
/// Products of at least 2²² flops are split on `threads` workers (default: all online
/// processors) into blocks of rows of c, or of columns when c has more columns than rows; each
/// block is one single-threaded GEMM over the whole of k.
extension BLAS {
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
public static func matmul<T: FFTScalar>(_ a: [T], transposeA: Bool = false, _ b: [T], transposeB: Bool = false,
                                 m: Int, n: Int, k: Int, into c: inout [T], accumulate: Bool = false, threads: Int? = nil) {
    precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n, "matmul: counts")
    guard m > 0, n > 0 else { return }
    if k == 0 {
        if !accumulate { for i in 0 ..< m * n { c[i] = 0 } }
        return
    }
    let byRows = m >= n
    let extent = byRows ? m : n
    let parts = 2 * m * n * k >= 1 << 22 ? max(1, min(threads ?? WorkerPool.onlineProcessorCount(), extent / 16)) : 1
    let (lda, ldb) = (transposeA ? m : k, transposeB ? k : n)
    let beta: T = accumulate ? 1 : 0
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                let (pa, pb, pc) = (SendablePointer(UnsafeMutablePointer(mutating: a.baseAddress!)),
                                    SendablePointer(UnsafeMutablePointer(mutating: b.baseAddress!)), SendablePointer(c.baseAddress!))
                let block: @Sendable (Int, Int) -> Void = { part, _ in
                    let (lo, hi) = (extent * part / parts, extent * (part + 1) / parts)
                    guard hi > lo else { return }
                    if byRows {
                        T.gemm(transposeA: transposeA, transposeB: transposeB, m: hi - lo, n: n, k: k, alpha: 1,
                               a: pa.pointer + (transposeA ? lo : lo * k), lda: lda, b: pb.pointer, ldb: ldb, beta: beta,
                               c: pc.pointer + lo * n, ldc: n)
                    } else {
                        T.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: hi - lo, k: k, alpha: 1,
                               a: pa.pointer, lda: lda, b: pb.pointer + (transposeB ? lo * k : lo), ldb: ldb, beta: beta,
                               c: pc.pointer + lo, ldc: n)
                    }
                }
                if parts == 1 { block(0, 0) } else { WorkerPool.shared.runTasks(parts, workers: parts, block) }
            }
        }
    }
}

/// `batch` row-major (rows × cols) matrices, each transposed to (cols × rows): in 32 × 32
/// tiles (so that reads and writes both stay within a few cache lines), the (matrix, tile row)
/// pairs split over the worker pool when there are more than 2^16 values.
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
public static func transposed<T: FFTScalar>(_ a: [T], batch: Int, rows: Int, cols: Int, threads: Int? = nil) -> [T] {
    precondition(a.count == batch * rows * cols, "transposed: counts")
    var t = [T](repeating: 0, count: a.count)
    let tile = 32
    let tileRows = (rows + tile - 1) / tile
    let tasks = batch * tileRows
    guard tasks > 0, cols > 0 else { return t }
    a.withUnsafeBufferPointer { a in
        t.withUnsafeMutableBufferPointer { t in
            let (pa, pt) = (SendablePointer(UnsafeMutablePointer(mutating: a.baseAddress!)), SendablePointer(t.baseAddress!))
            let body: @Sendable (Int, Int) -> Void = { task, _ in
                let (b, r0) = (task / tileRows, task % tileRows * tile)
                let base = b * rows * cols
                let r1 = min(r0 + tile, rows)
                var c0 = 0
                while c0 < cols {
                    let c1 = min(c0 + tile, cols)
                    for r in r0 ..< r1 {
                        for c in c0 ..< c1 { pt.pointer[base + c * rows + r] = pa.pointer[base + r * cols + c] }
                    }
                    c0 = c1
                }
            }
            let workers = a.count > 1 << 16 ? (threads ?? WorkerPool.onlineProcessorCount()) : 1
            WorkerPool.shared.runTasks(tasks, workers: workers, body)
        }
    }
    return t
}
}
