import SSMKit

/// The affine layers, each a forward/backward pair through OpenBLAS GEMM. Backward passes
/// accumulate (`+=`) into the gradients they are given. Legend: R rows (B·L tokens) · I inputs ·
/// O outputs · B batch · L length.
public enum Linear {
    /// y: (R, O) = x: (R, I) · Wᵀ + b, with W: (O, I) and b: (O) (PyTorch `nn.Linear`).
    @inlinable
    public static func forward<T: FFTScalar>(_ x: [T], weight w: [T], bias b: [T]?, rows R: Int, inputs I: Int,
                                             outputs O: Int) -> [T] {
        precondition(x.count == R * I && w.count == O * I && (b?.count ?? O) == O, "Linear: counts")
        var y = [T](repeating: 0, count: R * O)
        BLAS.matmul(x, w, transposeB: true, m: R, n: O, k: I, into: &y)
        if let b {
            for r in 0 ..< R { for o in 0 ..< O { y[r * O + o] += b[o] } }
        }
        return y
    }

    /// dX += dY · W; dW += dYᵀ · x; db += Σ_rows dY.
    @inlinable
    public static func backward<T: FFTScalar>(dY: [T], x: [T], weight w: [T], rows R: Int, inputs I: Int, outputs O: Int,
                                              dX: inout [T]?, dWeight: inout [T], dBias: inout [T]?) {
        precondition(dY.count == R * O && x.count == R * I && dWeight.count == O * I, "Linear.backward: counts")
        if dX != nil { BLAS.matmul(dY, w, m: R, n: I, k: O, into: &dX!, accumulate: true) }
        BLAS.matmul(dY, transposeA: true, x, m: O, n: I, k: R, into: &dWeight, accumulate: true)
        if dBias != nil {
            for r in 0 ..< R { for o in 0 ..< O { dBias![o] += dY[r * O + o] } }
        }
    }
}

/// The 1×1 convolution over channel-major sequences (PyTorch `nn.Conv1d(I, O, 1)`):
/// y_b: (O, L) = W: (O, I) · x_b: (I, L) + b, for each of B sequences x: (B, I, L).
/// The sequences run in parallel on `threads` workers, one GEMM each.
public enum PointwiseConvolution {
    public static func forward<T: FFTScalar>(_ x: [T], weight w: [T], bias b: [T], batch B: Int, inputs I: Int,
                                             outputs O: Int, length L: Int, threads: Int = 1) -> [T] {
        precondition(x.count == B * I * L && w.count == O * I && b.count == O, "PointwiseConvolution: counts")
        var y = [T](repeating: 0, count: B * O * L)
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                b.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { y in
                        forward(x.baseAddress!, weight: w.baseAddress!, bias: b.baseAddress!, y: y.baseAddress!, batch: B, inputs: I,
                                outputs: O, length: L, threads: threads)
                    }
                }
            }
        }
        return y
    }

    /// ``forward(_:weight:bias:batch:inputs:outputs:length:threads:)`` into the caller's y:
    /// (B, O, L), overwritten.
    public static func forward<T: FFTScalar>(_ x: UnsafePointer<T>, weight w: UnsafePointer<T>, bias b: UnsafePointer<T>,
                                             y: UnsafeMutablePointer<T>, batch B: Int, inputs I: Int, outputs O: Int, length L: Int,
                                             threads: Int = 1) {
        let pointers = (SendableBox(x), SendableBox(w), SendableBox(b), SendableBox(y))
        WorkerPool.forEachInParallel(B, threads: threads, (pointers, I, O, L)) { context, batch, _ in
            let ((px, pw, pb, py), I, O, L) = context
            let y = py.value + batch * O * L
            for o in 0 ..< O { (y + o * L).update(repeating: pb.value[o], count: L) }
            T.gemm(transposeA: false, transposeB: false, m: O, n: L, k: I, alpha: 1, a: pw.value, lda: I,
                   b: px.value + batch * I * L, ldb: L, beta: 1, c: y, ldc: L)
        }
    }

    /// dX_b += Wᵀ · dY_b; dW += Σ_b dY_b · x_bᵀ; db += Σ_{b,t} dY. Each worker sums its
    /// sequences' dW into its own partial; the partials are added in worker order.
    public static func backward<T: FFTScalar>(dY: [T], x: [T], weight w: [T], batch B: Int, inputs I: Int, outputs O: Int,
                                              length L: Int, dX: inout [T], dWeight: inout [T], dBias: inout [T], threads: Int = 1) {
        precondition(dY.count == B * O * L && x.count == B * I * L && dX.count == x.count && dWeight.count == O * I
            && dBias.count == O, "PointwiseConvolution.backward: counts")
        var partials = [T](repeating: 0, count: partialCount(batch: B, inputs: I, outputs: O, threads: threads))
        dY.withUnsafeBufferPointer { dY in
            x.withUnsafeBufferPointer { x in
                w.withUnsafeBufferPointer { w in
                    dX.withUnsafeMutableBufferPointer { dX in
                        dWeight.withUnsafeMutableBufferPointer { dW in
                            dBias.withUnsafeMutableBufferPointer { db in
                                partials.withUnsafeMutableBufferPointer { partials in
                                    backward(dY: dY.baseAddress!, x: x.baseAddress!, weight: w.baseAddress!, batch: B, inputs: I, outputs: O,
                                             length: L, dX: dX.baseAddress!, accumulate: true, dWeight: dW.baseAddress!, dBias: db.baseAddress!,
                                             partials: partials.baseAddress!, threads: threads)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The scalars of scratch that ``backward(dY:x:weight:batch:inputs:outputs:length:dX:accumulate:dWeight:dBias:partials:threads:)`` needs.
    public static func partialCount(batch B: Int, inputs I: Int, outputs O: Int, threads: Int) -> Int {
        max(1, min(threads, B)) * O * (I + 1)
    }

    /// The backward pass on the caller's buffers: dX overwritten (`accumulate: false`) or added
    /// to; dW and db added to; `partials` is scratch of ``partialCount(batch:inputs:outputs:threads:)``.
    public static func backward<T: FFTScalar>(dY: UnsafePointer<T>, x: UnsafePointer<T>, weight w: UnsafePointer<T>, batch B: Int,
                                              inputs I: Int, outputs O: Int, length L: Int, dX: UnsafeMutablePointer<T>, accumulate: Bool,
                                              dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
                                              partials: UnsafeMutablePointer<T>, threads: Int = 1) {
        let workers = max(1, min(threads, B))
        let stride = O * (I + 1)  // per worker: its dW (O, I), then its db (O)
        partials.update(repeating: 0, count: workers * stride)
        let pointers = (SendableBox(dY), SendableBox(x), SendableBox(w), SendableBox(dX), SendableBox(partials))
        // Worker j takes sequences j, j + workers, …: a fixed assignment, so the sum's order is too.
        WorkerPool.forEachInParallel(workers, threads: workers, (pointers, B, I, O, L, workers, accumulate, stride)) { context, j, _ in
            let ((pdY, px, pw, pdX, partials), B, I, O, L, workers, accumulate, stride) = context
            let (dW, db) = (partials.value + j * stride, partials.value + j * stride + O * I)
            for batch in Swift.stride(from: j, to: B, by: workers) {
                T.gemm(transposeA: true, transposeB: false, m: I, n: L, k: O, alpha: 1, a: pw.value, lda: I,
                       b: pdY.value + batch * O * L, ldb: L, beta: accumulate ? 1 : 0, c: pdX.value + batch * I * L, ldc: L)
                T.gemm(transposeA: false, transposeB: true, m: O, n: I, k: L, alpha: 1,
                       a: pdY.value + batch * O * L, lda: L, b: px.value + batch * I * L, ldb: L,
                       beta: 1, c: dW, ldc: I)
                addRowSums(pdY.value + batch * O * L, rows: O, cols: L, into: db)
            }
        }
        for j in 0 ..< workers {
            for i in 0 ..< O * I { dWeight[i] += partials[j * stride + i] }
            for o in 0 ..< O { dBias[o] += partials[j * stride + O * I + o] }
        }
    }
}
