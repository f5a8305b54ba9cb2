import CSSMKitBLAS
import CSSMKitKernels
#if canImport(Glibc)
import Glibc
#endif

// GEMM through CBLAS, row-major, for the linear layers (Mamba's projections). The library that
// runs the GEMMs is chosen once, at the first one (see ``BLAS/backend``).

/// Matrix products and transposes on flat row-major arrays, split over SSMKit's worker pool.
public enum BLAS {
    /// A library that can run SSMKit's GEMMs.
    public enum Backend: String, Sendable, CaseIterable {
        /// OpenBLAS, which SSMKit links (it also serves LAPACKE).
        case openblas
        /// BLIS (Debian's libblis4-serial, -pthread or -openmp), loaded at run time.
        case blis
    }

    /// The library that runs SSMKit's GEMMs in this process, chosen once, at the first GEMM or
    /// the first reading of this property (``BuildInfo/blas`` reads it, and so `ssm` does at start):
    /// `$SSMKIT_BLAS` (`openblas` or `blis`) when set, else OpenBLAS unless it did not recognize
    /// this CPU — Debian's OpenBLAS 0.3.21 picks its kernels by CPU model, and on models it
    /// does not know (several recent Intel Xeons) it falls back to SSE3 "Prescott" kernels two
    /// to three times slower — in which case BLIS, which picks its kernels by CPU features, is
    /// used when it is installed and has kernels for this CPU.
    ///
    /// Process-wide state, made when the choice is: with OpenBLAS, `openblas_set_num_threads(1)`,
    /// which holds for the whole process, this library's callers included; with BLIS,
    /// `bli_thread_set_num_threads(1)`. Both libraries' own threads spin while they wait, which on
    /// a small machine steals the cores from SSMKit's workers (measured: a third of a Mamba
    /// training step in the scheduler), so `BLAS.matmul`
    /// runs single-threaded GEMMs on blocks of the product over SSMKit's worker pool instead. A
    /// program that wants OpenBLAS threads for its own GEMMs sets them again after SSMKit's first.
    public static var backend: Backend { gemmLibrary.backend }

    /// Why ``backend`` was chosen, with the kernels the library picked for this CPU
    /// (OpenBLAS's core name, BLIS's configuration).
    public static var backendDescription: String { gemmLibrary.description }
}

/// `cblas_sgemm` and `cblas_dgemm`, the CBLAS enumerations passed as their C integer values.
typealias CBLASSgemm = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                       UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
typealias CBLASDgemm = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Double, UnsafePointer<Double>?, Int32,
                                       UnsafePointer<Double>?, Int32, Double, UnsafeMutablePointer<Double>?, Int32) -> Void

/// The GEMM entry points of the chosen library.
struct GEMMLibrary: @unchecked Sendable {
    let backend: BLAS.Backend
    let description: String
    let sgemm: CBLASSgemm
    let dgemm: CBLASDgemm

    static let rowMajor = Int32(CblasRowMajor.rawValue)
    static func transpose(_ t: Bool) -> Int32 { Int32((t ? CblasTrans : CblasNoTrans).rawValue) }
    static let noTranspose = Int32(CblasNoTrans.rawValue)

    /// OpenBLAS's core types without AVX2 kernels: on a CPU with AVX2, OpenBLAS reporting one
    /// of them means that it did not recognize the CPU.
    static let coresWithoutAVX2: Set<String> = [
        "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington", "nehalem",
        "sandybridge", "opteron", "opteron_sse3", "barcelona", "bobcat", "bulldozer", "piledriver", "steamroller", "nano",
    ]

    /// The process's own cblas_?gemm: OpenBLAS's, which SSMKit links.
    static let plainSgemm: CBLASSgemm = { cblas_sgemm(CBLAS_ORDER(UInt32($0)), CBLAS_TRANSPOSE(UInt32($1)), CBLAS_TRANSPOSE(UInt32($2)),
                                                      $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) }
    static let plainDgemm: CBLASDgemm = { cblas_dgemm(CBLAS_ORDER(UInt32($0)), CBLAS_TRANSPOSE(UInt32($1)), CBLAS_TRANSPOSE(UInt32($2)),
                                                      $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) }

    /// OpenBLAS's core types whose single-precision and double-precision small-matrix kernels
    /// (AVX-512) allocate a buffer on every call for some products: see ``openBLAS(_:)``.
    static let coresWithAllocatingSmallKernels: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

    /// OpenBLAS, single-threaded. On its AVX-512 cores, a row-major product with neither operand
    /// transposed and m·n·k ≤ 10^6 (the range of its small-matrix kernels) whose last block of
    /// columns is narrow (n mod 16 in 1 … 8 for Float, n mod 8 in 1 … 4 for Double) makes
    /// OpenBLAS 0.3.21 pack those columns into memory it allocates and frees on each call —
    /// measured call by call with a counting `malloc`, every other case allocates nothing. There
    /// SSMKit gives OpenBLAS the columns up to the last whole block and computes the narrow rest
    /// itself (`ssm_gemm_columns_*`, dot products over b's packed columns), so that a training
    /// step allocates nothing on these CPUs too.
    static func openBLAS(_ why: String) -> GEMMLibrary {
        openblas_set_num_threads(1)
        let core = String(cString: openblas_get_corename())
        guard coresWithAllocatingSmallKernels.contains(core.lowercased()) else {
            return GEMMLibrary(backend: .openblas, description: "OpenBLAS \(core) kernels (\(why))", sgemm: plainSgemm, dgemm: plainDgemm)
        }
        let sgemm: CBLASSgemm = {
            GEMMLibrary.splittingNarrowColumns($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, block: 16,
                                               library: GEMMLibrary.plainSgemm, columns: ssm_gemm_columns_f32)
        }
        let dgemm: CBLASDgemm = {
            GEMMLibrary.splittingNarrowColumns($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, block: 8,
                                               library: GEMMLibrary.plainDgemm, columns: ssm_gemm_columns_f64)
        }
        return GEMMLibrary(backend: .openblas, description: "OpenBLAS \(core) kernels (\(why))", sgemm: sgemm, dgemm: dgemm)
    }

    /// The product of ``openBLAS(_:)``'s workaround, either precision: when the last block of
    /// `block` columns holds 1 … block/2 of them, the whole blocks go to `library` and the
    /// rest to `columns`.
    static func splittingNarrowColumns<T>(
        _ order: Int32, _ ta: Int32, _ tb: Int32, _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: T, _ a: UnsafePointer<T>?, _ lda: Int32,
        _ b: UnsafePointer<T>?, _ ldb: Int32, _ beta: T, _ c: UnsafeMutablePointer<T>?, _ ldc: Int32, block: Int32,
        library: (Int32, Int32, Int32, Int32, Int32, Int32, T, UnsafePointer<T>?, Int32, UnsafePointer<T>?, Int32, T,
                  UnsafeMutablePointer<T>?, Int32) -> Void,
        columns: (Int, Int, Int, T, UnsafePointer<T>?, Int, UnsafePointer<T>?, Int, T, UnsafeMutablePointer<T>?, Int) -> Void
    ) {
        let narrow = n % block
        guard order == rowMajor, ta == noTranspose, tb == noTranspose, narrow >= 1, narrow <= block / 2,
              Int(m) * Int(n) * Int(k) <= 1_000_000, let b, let c
        else { return library(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) }
        let wide = n - narrow
        if wide > 0 { library(order, ta, tb, m, wide, k, alpha, a, lda, b, ldb, beta, c, ldc) }
        columns(Int(m), Int(narrow), Int(k), alpha, a, Int(lda), b + Int(wide), Int(ldb), beta, c + Int(wide), Int(ldc))
    }

    /// glibc's RTLD_DEEPBIND (a GNU extension the Glibc module does not import).
    static let deepBind: Int32 = 0x00008

    /// BLIS from libblis.so.4, nil when it is not installed, lacks an entry point, or has only
    /// its generic kernels for this CPU. It is loaded with its symbols kept private (RTLD_LOCAL:
    /// OpenBLAS keeps the process's BLAS names) and bound to its own definitions first
    /// (RTLD_DEEPBIND): BLIS's cblas_sgemm calls its own sgemm_, which would otherwise resolve
    /// to OpenBLAS's, running OpenBLAS's kernels under BLIS's name.
    /// Under AddressSanitizer (whose runtime refuses RTLD_DEEPBIND) BLIS is not loaded.
    static func blis(_ why: String) -> GEMMLibrary? {
        guard !BuildInfo.underAddressSanitizer else { return nil }
        guard let handle = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL | deepBind),
              let s = dlsym(handle, "cblas_sgemm"), let d = dlsym(handle, "cblas_dgemm"),
              let setThreads = dlsym(handle, "bli_thread_set_num_threads"),
              let queryID = dlsym(handle, "bli_arch_query_id"), let archString = dlsym(handle, "bli_arch_string")
        else { return nil }
        typealias QueryID = @convention(c) () -> Int32
        typealias ArchString = @convention(c) (Int32) -> UnsafePointer<CChar>?
        typealias SetThreads = @convention(c) (Int) -> Void
        let arch = unsafeBitCast(archString, to: ArchString.self)(unsafeBitCast(queryID, to: QueryID.self)())
            .map { String(cString: $0) } ?? "unknown"
        guard arch != "generic" else { return nil }
        unsafeBitCast(setThreads, to: SetThreads.self)(1)
        return GEMMLibrary(backend: .blis, description: "BLIS \(arch) kernels (\(why))",
                           sgemm: unsafeBitCast(s, to: CBLASSgemm.self), dgemm: unsafeBitCast(d, to: CBLASDgemm.self))
    }

    static func choose() -> GEMMLibrary {
        let requested = getenv("SSMKIT_BLAS").map { String(cString: $0) }
        if requested == BLAS.Backend.openblas.rawValue { return openBLAS("SSMKIT_BLAS=openblas") }
        if requested == BLAS.Backend.blis.rawValue {
            return blis("SSMKIT_BLAS=blis") ?? openBLAS("SSMKIT_BLAS=blis, but libblis.so.4 is missing or has only generic kernels")
        }
        // An unknown value is ignored, and said so in the description.
        let ignored = requested.map { "; SSMKIT_BLAS=\($0) ignored: expected openblas or blis" } ?? ""
        var chosen = automatic()
        if !ignored.isEmpty {
            chosen = GEMMLibrary(backend: chosen.backend, description: chosen.description + ignored, sgemm: chosen.sgemm, dgemm: chosen.dgemm)
        }
        return chosen
    }

    /// OpenBLAS where it recognized the CPU, else BLIS when it can run.
    static func automatic() -> GEMMLibrary {
        let core = String(cString: openblas_get_corename()).lowercased()
        if ssm_cpu_has_avx2_fma() != 0, coresWithoutAVX2.contains(core) {
            return blis("OpenBLAS chose \(core) kernels on a CPU with AVX2")
                ?? openBLAS("it did not recognize this CPU, and BLIS is not installed")
        }
        return openBLAS("it recognized this CPU")
    }
}

let gemmLibrary = GEMMLibrary.choose()

extension Float {
    /// One single-threaded row-major GEMM on the chosen library (``BLAS/backend``):
    /// c = alpha·op(a)·op(b) + beta·c, with op(a) m × k and op(b) k × n.
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                            c: UnsafeMutablePointer<Float>, ldc: Int) {
        if OperationRecorder.isRecording {
            OperationRecorder.note(.init(double: false, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                         lda: lda, ldb: ldb, ldc: ldc, beta: Double(beta)))
        }
        gemmLibrary.sgemm(GEMMLibrary.rowMajor, GEMMLibrary.transpose(transposeA), GEMMLibrary.transpose(transposeB),
                          Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Double {
    /// One single-threaded row-major GEMM on the chosen library (``BLAS/backend``):
    /// c = alpha·op(a)·op(b) + beta·c, with op(a) m × k and op(b) k × n.
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
                            c: UnsafeMutablePointer<Double>, ldc: Int) {
        if OperationRecorder.isRecording {
            OperationRecorder.note(.init(double: true, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                         lda: lda, ldb: ldb, ldc: ldc, beta: beta))
        }
        gemmLibrary.dgemm(GEMMLibrary.rowMajor, GEMMLibrary.transpose(transposeA), GEMMLibrary.transpose(transposeB),
                          Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension BLAS {
    /// c (m × n) = op(a) · op(b), or c += … when `accumulate`; row-major. op(a) is m × k: `a` is
    /// stored m × k, or k × m when `transposeA`; op(b) is k × n: `b` is k × n, or n × k when
    /// `transposeB`. A precondition checks the counts (a programmer error, not user input).
    ///
    /// Products of at least 2²² flops are split on `threads` workers (default: all online
    /// processors) into blocks of rows of c, or of columns when c has more columns than rows; each
    /// block is one single-threaded GEMM over the whole of k.
    @inlinable
    public static func matmul<T: FFTScalar>(_ a: [T], transposeA: Bool = false, _ b: [T], transposeB: Bool = false,
                                            m: Int, n: Int, k: Int, into c: inout [T], accumulate: Bool = false, threads: Int? = nil) {
        precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n, "matmul: counts")
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    matmul(a.baseAddress!, transposeA: transposeA, b.baseAddress!, transposeB: transposeB, m: m, n: n, k: k,
                           into: c.baseAddress!, accumulate: accumulate, threads: threads)
                }
            }
        }
    }

    /// The same product on the caller's buffers (`c` must not overlap `a` or `b`). The leading
    /// dimensions default to the packed ones (`a`: k, or m when transposed; `b`: n, or k; `c`: n);
    /// larger ones read or write a block of columns of a wider matrix.
    @inlinable
    public static func matmul<T: FFTScalar>(_ a: UnsafePointer<T>, transposeA: Bool = false, _ b: UnsafePointer<T>, transposeB: Bool = false,
                                            m: Int, n: Int, k: Int, into c: UnsafeMutablePointer<T>, accumulate: Bool = false,
                                            lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil, threads: Int? = nil) {
        guard m > 0, n > 0 else { return }
        let ldc = ldc ?? n
        if k == 0 {
            if !accumulate { for i in 0 ..< m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        let byRows = m >= n
        let extent = byRows ? m : n
        let parts = 2 * m * n * k >= 1 << 22 ? max(1, min(threads ?? WorkerPool.onlineProcessorCount(), extent / 16)) : 1
        let (lda, ldb) = (lda ?? (transposeA ? m : k), ldb ?? (transposeB ? k : n))
        let beta: T = accumulate ? 1 : 0
        let blocks = GEMMBlocks(a: a, b: b, c: c, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, lda: lda, ldb: ldb,
                                ldc: ldc, beta: beta, byRows: byRows, extent: extent, parts: parts)
        if parts == 1 { blocks.run(0); return }
        WorkerPool.forEachInParallel(parts, threads: parts, blocks) { blocks, part, _ in blocks.run(part) }
    }

    /// `batch` products c_i = op(a_i)·op(b_i) (or c_i += … when `accumulate`), with
    /// a_i = a + i·strideA, b_i = b + i·strideB, c_i = c + i·strideC and the leading dimensions
    /// of ``matmul(_:transposeA:_:transposeB:m:n:k:into:accumulate:lda:ldb:ldc:threads:)``.
    /// The c_i must not overlap each other (a stride of 0 for a or b shares one operand). When
    /// the batch has at least as many products as threads, each product is one single-threaded
    /// GEMM and the products run in parallel; otherwise they run in turn, each split as that
    /// function splits it.
    @inlinable
    public static func matmul<T: FFTScalar>(batch: Int, _ a: UnsafePointer<T>, strideA: Int, transposeA: Bool = false, lda: Int? = nil,
                                            _ b: UnsafePointer<T>, strideB: Int, transposeB: Bool = false, ldb: Int? = nil,
                                            m: Int, n: Int, k: Int, into c: UnsafeMutablePointer<T>, strideC: Int, ldc: Int? = nil,
                                            accumulate: Bool = false, threads: Int? = nil) {
        let threads = threads ?? WorkerPool.onlineProcessorCount()
        guard batch >= threads, threads > 1, m > 0, n > 0, k > 0 else {
            for i in 0 ..< batch {
                matmul(a + i * strideA, transposeA: transposeA, b + i * strideB, transposeB: transposeB, m: m, n: n, k: k,
                       into: c + i * strideC, accumulate: accumulate, lda: lda, ldb: ldb, ldc: ldc, threads: threads)
            }
            return
        }
        let (lda, ldb, ldc) = (lda ?? (transposeA ? m : k), ldb ?? (transposeB ? k : n), ldc ?? n)
        let one = GEMMBlocks(a: a, b: b, c: c, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, lda: lda, ldb: ldb,
                             ldc: ldc, beta: accumulate ? 1 : 0, byRows: true, extent: m, parts: 1)
        WorkerPool.forEachInParallel(batch, threads: threads, BatchedGEMM(product: one, strideA: strideA, strideB: strideB, strideC: strideC)) {
            products, i, _ in products.run(i)
        }
    }

    /// `batch` row-major (rows × cols) matrices, each transposed to (cols × rows): in 32 × 32
    /// tiles (so that reads and writes both stay within a few cache lines), the (matrix, tile row)
    /// pairs split over the worker pool when there are more than 2^16 values.
    @inlinable
    public static func transposed<T: FFTScalar>(_ a: [T], batch: Int, rows: Int, cols: Int, threads: Int? = nil) -> [T] {
        precondition(a.count == batch * rows * cols, "transposed: counts")
        var t = [T](repeating: 0, count: a.count)
        a.withUnsafeBufferPointer { a in
            t.withUnsafeMutableBufferPointer { t in
                transpose(a.baseAddress!, into: t.baseAddress!, batch: batch, rows: rows, cols: cols, threads: threads)
            }
        }
        return t
    }

    /// ``transposed(_:batch:rows:cols:threads:)`` into the caller's buffer (which must not
    /// overlap `a`): `batch · rows · cols` values each.
    @inlinable
    public static func transpose<T: FFTScalar>(_ a: UnsafePointer<T>, into t: UnsafeMutablePointer<T>, batch: Int, rows: Int, cols: Int,
                                               threads: Int? = nil) {
        let tile = 32
        let tileRows = (rows + tile - 1) / tile
        let tasks = batch * tileRows
        guard tasks > 0, cols > 0 else { return }
        let workers = batch * rows * cols > 1 << 16 ? (threads ?? WorkerPool.onlineProcessorCount()) : 1
        WorkerPool.forEachInParallel(tasks, threads: workers, TransposeTiles(a: a, t: t, rows: rows, cols: cols, tile: tile, tileRows: tileRows)) {
            tiles, task, worker in tiles.run(task, worker: worker)
        }
    }
}

/// One block of rows (or columns) of c per task (the context of a parallel loop): a single-threaded GEMM over the whole of k.
@usableFromInline
struct GEMMBlocks<T: FFTScalar> {
    @usableFromInline let a, b: UnsafePointer<T>
    @usableFromInline let c: UnsafeMutablePointer<T>
    @usableFromInline let transposeA, transposeB: Bool
    @usableFromInline let m, n, k, lda, ldb, ldc: Int
    @usableFromInline let beta: T
    @usableFromInline let byRows: Bool
    @usableFromInline let extent, parts: Int

    @inlinable
    init(a: UnsafePointer<T>, b: UnsafePointer<T>, c: UnsafeMutablePointer<T>, transposeA: Bool, transposeB: Bool,
         m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, beta: T, byRows: Bool, extent: Int, parts: Int) {
        (self.a, self.b, self.c, self.transposeA, self.transposeB) = (a, b, c, transposeA, transposeB)
        (self.m, self.n, self.k, self.lda, self.ldb, self.ldc, self.beta) = (m, n, k, lda, ldb, ldc, beta)
        (self.byRows, self.extent, self.parts) = (byRows, extent, parts)
    }

    @inlinable
    func run(_ part: Int) {
        let (lo, hi) = (extent * part / parts, extent * (part + 1) / parts)
        guard hi > lo else { return }
        if byRows {
            T.gemm(transposeA: transposeA, transposeB: transposeB, m: hi - lo, n: n, k: k, alpha: 1,
                   a: a + (transposeA ? lo : lo * lda), lda: lda, b: b, ldb: ldb, beta: beta, c: c + lo * ldc, ldc: ldc)
        } else {
            T.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: hi - lo, k: k, alpha: 1,
                   a: a, lda: lda, b: b + (transposeB ? lo * ldb : lo), ldb: ldb, beta: beta, c: c + lo, ldc: ldc)
        }
    }
}

/// One (matrix, row of tiles) per task of a batched transpose.
@usableFromInline
struct TransposeTiles<T> {
    @usableFromInline let a: UnsafePointer<T>
    @usableFromInline let t: UnsafeMutablePointer<T>
    @usableFromInline let rows, cols, tile, tileRows: Int

    @inlinable
    init(a: UnsafePointer<T>, t: UnsafeMutablePointer<T>, rows: Int, cols: Int, tile: Int, tileRows: Int) {
        (self.a, self.t, self.rows, self.cols, self.tile, self.tileRows) = (a, t, rows, cols, tile, tileRows)
    }

    @inlinable
    func run(_ task: Int, worker: Int) {
        let (b, r0) = (task / tileRows, task % tileRows * tile)
        let base = b * rows * cols
        let r1 = min(r0 + tile, rows)
        var c0 = 0
        while c0 < cols {
            let c1 = min(c0 + tile, cols)
            for r in r0 ..< r1 {
                for c in c0 ..< c1 { t[base + c * rows + r] = a[base + r * cols + c] }
            }
            c0 = c1
        }
    }
}

/// One product of a batch per task.
@usableFromInline
struct BatchedGEMM<T: FFTScalar> {
    @usableFromInline let product: GEMMBlocks<T>
    @usableFromInline let strideA, strideB, strideC: Int

    @inlinable
    init(product: GEMMBlocks<T>, strideA: Int, strideB: Int, strideC: Int) {
        (self.product, self.strideA, self.strideB, self.strideC) = (product, strideA, strideB, strideC)
    }

    @inlinable
    func run(_ i: Int) {
        let p = product
        T.gemm(transposeA: p.transposeA, transposeB: p.transposeB, m: p.m, n: p.n, k: p.k, alpha: 1, a: p.a + i * strideA, lda: p.lda,
               b: p.b + i * strideB, ldb: p.ldb, beta: p.beta, c: p.c + i * strideC, ldc: p.ldc)
    }
}
