import CSSMKitKernels

extension BLAS {
    /// y (rows) = W · x, or y += W · x when `accumulate`: W row-major (rows × cols, leading
    /// dimension `ld`, default cols), the product of one token through a linear layer.
    ///
    /// A GEMM library packs its operands, which for one vector means copying the whole matrix
    /// per call; this reads each weight once, which is what bounds step mode (decoding): the
    /// matrix streams from memory at the bandwidth available. The rows are split over `threads`
    /// workers (default: all online processors), into at most rows / 16 blocks, when the matrix
    /// holds at least 2^16 values (so Mamba's x_proj, 80 × 1536, runs on up to 5 threads).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public static func matvec<T: FFTScalar>(_ w: UnsafePointer<T>, rows: Int, cols: Int, ld: Int? = nil, _ x: UnsafePointer<T>,
                                            into y: UnsafeMutablePointer<T>, accumulate: Bool = false, threads: Int? = nil) {
        MatVecRows.run(w: UnsafeRawPointer(w), x: UnsafeRawPointer(x), y: UnsafeMutableRawPointer(y), rows: rows, cols: cols, ld: ld,
                       accumulate: accumulate, kind: T.self == Float.self ? .f32 : .f64, threads: threads)
    }

    /// ``matvec(_:rows:cols:ld:_:into:accumulate:threads:)`` with W stored as bfloat16 (the
    /// upper 16 bits of float32 values): half the bytes per token, the arithmetic in Float.
    public static func matvec(bfloat16 w: UnsafePointer<UInt16>, rows: Int, cols: Int, ld: Int? = nil, _ x: UnsafePointer<Float>,
                              into y: UnsafeMutablePointer<Float>, accumulate: Bool = false, threads: Int? = nil) {
        MatVecRows.run(w: UnsafeRawPointer(w), x: UnsafeRawPointer(x), y: UnsafeMutableRawPointer(y), rows: rows, cols: cols, ld: ld,
                       accumulate: accumulate, kind: .bf16, threads: threads)
    }
}

/// One block of rows of a matrix-vector product per task.
struct MatVecRows: @unchecked Sendable {
    enum Kind { case f32, f64, bf16 }
    let w, x: UnsafeRawPointer
    let y: UnsafeMutableRawPointer
    let rows, cols, ld: Int
    let accumulate: Bool
    let kind: Kind
    let parts: Int

    /// Checks the sizes and runs the product, in parts when the matrix is large.
    static func run(w: UnsafeRawPointer, x: UnsafeRawPointer, y: UnsafeMutableRawPointer, rows: Int, cols: Int, ld: Int?, accumulate: Bool,
                    kind: Kind, threads: Int?) {
        guard rows > 0 else { return }
        let ld = ld ?? cols
        precondition(ld >= cols, "matvec: leading dimension \(ld) < \(cols) columns")
        let parts = rows * cols >= 1 << 16 ? max(1, min(threads ?? WorkerPool.onlineProcessorCount(), rows / 16)) : 1
        let product = MatVecRows(w: w, x: x, y: y, rows: rows, cols: cols, ld: ld, accumulate: accumulate, kind: kind, parts: parts)
        if parts == 1 { product.run(0); return }
        WorkerPool.forEachInParallel(parts, threads: parts, product) { product, part, _ in product.run(part) }
    }

    func run(_ part: Int) {
        // Blocks of a multiple of 4 rows (the kernel's unroll), the remainder in the last.
        let per = (rows + parts - 1) / parts
        let block = (per + 3) / 4 * 4
        let lo = min(rows, part * block), hi = part == parts - 1 ? rows : min(rows, (part + 1) * block)
        guard hi > lo else { return }
        let add: Int32 = accumulate ? 1 : 0
        switch kind {
        case .f32:
            ssm_gemv_f32(w.assumingMemoryBound(to: Float.self) + lo * ld, ld, x.assumingMemoryBound(to: Float.self),
                         y.assumingMemoryBound(to: Float.self) + lo, hi - lo, cols, add)
        case .f64:
            ssm_gemv_f64(w.assumingMemoryBound(to: Double.self) + lo * ld, ld, x.assumingMemoryBound(to: Double.self),
                         y.assumingMemoryBound(to: Double.self) + lo, hi - lo, cols, add)
        case .bf16:
            ssm_gemv_bf16(w.assumingMemoryBound(to: UInt16.self) + lo * ld, ld, x.assumingMemoryBound(to: Float.self),
                          y.assumingMemoryBound(to: Float.self) + lo, hi - lo, cols, add)
        }
    }
}

/// The rate at which this machine streams memory into the cores: the bound of any pass that
/// reads each byte once (decoding reads every weight once per token).
public enum MemoryBandwidth {
    /// Bytes per second of reading a buffer of `bytes` (default 512 MiB, beyond any cache) on
    /// `threads` workers, each summing its share with vector loads; the best of `repeats`.
    public static func measure(bytes: Int = 512 << 20, threads: Int? = nil, repeats: Int = 5) -> Double {
        let count = max(1 << 16, bytes / 4)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: count)
        let workers = max(1, threads ?? WorkerPool.onlineProcessorCount())
        let clock = ContinuousClock()
        var best = Double.infinity
        for _ in 0 ..< max(1, repeats) {
            let start = clock.now
            WorkerPool.forEachInParallel(workers, threads: workers, SumParts(x: buffer, count: count, parts: workers)) { sum, part, _ in
                sum.run(part)
            }
            let d = clock.now - start
            best = min(best, d.seconds)
        }
        return Double(count * 4) / best
    }
}

/// One worker's share of a bandwidth sum.
struct SumParts: @unchecked Sendable {
    let x: UnsafeMutablePointer<Float>
    let count, parts: Int

    func run(_ part: Int) {
        let lo = count * part / parts, hi = count * (part + 1) / parts
        // The result is kept opaque so that the sum is not optimized away.
        withExtendedLifetime(ssm_sum_f32(x + lo, hi - lo)) {}
    }
}
