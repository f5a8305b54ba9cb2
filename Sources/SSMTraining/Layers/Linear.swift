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
        forward(x, weight: w, bias: b, y: y, batch: B, inputs: I, outputs: O, length: L, glu: nil, threads: threads)
    }

    /// The forward pass, then (with `glu`) the GLU over y's channels applied to each sequence
    /// right after its GEMM, while y_b is in cache: the values of ``GLU`` run afterwards.
    static func forward<T: FFTScalar>(_ x: UnsafePointer<T>, weight w: UnsafePointer<T>, bias b: UnsafePointer<T>,
                                      y: UnsafeMutablePointer<T>, batch B: Int, inputs I: Int, outputs O: Int, length L: Int,
                                      glu: GLUStage<T>?, threads: Int) {
        let pointers = (SendableBox(x), SendableBox(w), SendableBox(b), SendableBox(y))
        WorkerPool.forEachInParallel(B, threads: threads, (pointers, glu.map { SendableBox($0) }, I, O, L)) { context, batch, _ in
            let ((px, pw, pb, py), glu, I, O, L) = context
            let y = py.value + batch * O * L
            for o in 0 ..< O { (y + o * L).update(repeating: pb.value[o], count: L) }
            T.gemm(transposeA: false, transposeB: false, m: O, n: L, k: I, alpha: 1, a: pw.value, lda: I,
                   b: px.value + batch * I * L, ldb: L, beta: 1, c: y, ldc: L)
            if let stage = glu?.value {
                let half = O / 2 * L, out = batch * half
                gluForward(y, y + half, residual: stage.residual.map { $0 + out }, y: stage.y + out, gate: stage.gate + out, count: half)
            }
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
        backward(dY: dY, x: x, weight: w, batch: B, inputs: I, outputs: O, length: L, dX: dX, accumulate: accumulate, dWeight: dWeight,
                 dBias: dBias, partials: partials, glu: nil, threads: threads)
    }

    /// The backward pass; with `glu`, each sequence's dY_b is first written into `dY` as the
    /// gradient through the GLU that `forward(…, glu:)` applied (from that GLU's output
    /// gradient, y and the kept gate), so dY_b is in cache for the GEMMs that read it.
    static func backward<T: FFTScalar>(dY: UnsafePointer<T>, x: UnsafePointer<T>, weight w: UnsafePointer<T>, batch B: Int,
                                       inputs I: Int, outputs O: Int, length L: Int, dX: UnsafeMutablePointer<T>, accumulate: Bool,
                                       dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
                                       partials: UnsafeMutablePointer<T>, glu: GLUGradientStage<T>?, threads: Int) {
        let workers = max(1, min(threads, B))
        let stride = O * (I + 1)  // per worker: its dW (O, I), then its db (O)
        partials.update(repeating: 0, count: workers * stride)
        let pointers = (SendableBox(dY), SendableBox(x), SendableBox(w), SendableBox(dX), SendableBox(partials))
        // Worker j takes sequences j, j + workers, …: a fixed assignment, so the sum's order is too.
        let shape = (B, I, O, L, workers, accumulate, stride)
        WorkerPool.forEachInParallel(workers, threads: workers, (pointers, glu.map { SendableBox($0) }, shape)) { context, j, _ in
            let ((pdY, px, pw, pdX, partials), glu, (B, I, O, L, workers, accumulate, stride)) = context
            let (dW, db) = (partials.value + j * stride, partials.value + j * stride + O * I)
            for batch in Swift.stride(from: j, to: B, by: workers) {
                if let stage = glu?.value {
                    let (half, a) = (O / 2 * L, stage.a + batch * O * L)
                    let dA = UnsafeMutablePointer(mutating: pdY.value + batch * O * L)
                    gluBackward(dY: stage.dY + batch * half, a: a, gate: stage.gate + batch * half, dA: dA, dG: dA + half, count: half,
                                accumulate: false)
                }
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

/// The GLU that ``PointwiseConvolution/forward(_:weight:bias:y:batch:inputs:outputs:length:glu:threads:)``
/// applies to each sequence's output a_b (2n channels): y_b = a_b[:n] ⊙ σ(a_b[n:]), plus
/// `residual` when given, the gate σ kept; the layout of ``GLU`` with blocks = B.
struct GLUStage<T> {
    var y: UnsafeMutablePointer<T>, gate: UnsafeMutablePointer<T>, residual: UnsafePointer<T>?
}

/// What backward needs to take the gradient back through that GLU: dY of its output, its input
/// a (the convolution's output) and the gate forward kept.
struct GLUGradientStage<T> {
    var dY: UnsafePointer<T>, a: UnsafePointer<T>, gate: UnsafePointer<T>
}
