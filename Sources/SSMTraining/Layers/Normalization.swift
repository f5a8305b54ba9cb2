import SSMKit

/// LayerNorm over the last axis (PyTorch `nn.LayerNorm(C)`, ε = 1e-5), rows x: (R, C):
///
///     μ = mean(x),  σ⁻¹ = 1/√(mean((x − μ)²) + ε),  n = (x − μ)·σ⁻¹,  y = n ⊙ w + b
public enum LayerNorm {
    public static let epsilon = 1e-5

    /// What backward needs: μ and σ⁻¹ per row (R).
    public struct Statistics: Sendable {
        public let mean: [Double], inverseDeviation: [Double]
        @inlinable
        public init(mean: [Double], inverseDeviation: [Double]) { (self.mean, self.inverseDeviation) = (mean, inverseDeviation) }
    }

    public static func forward<T: FFTScalar>(_ x: [T], weight w: [T], bias b: [T], rows R: Int, channels C: Int,
                                             threads: Int = 1) -> (y: [T], statistics: Statistics) {
        precondition(x.count == R * C && w.count == C && b.count == C, "LayerNorm: counts")
        var y = [T](repeating: 0, count: R * C)
        var means = [Double](repeating: 0, count: R), inverses = means
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                b.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { y in
                        means.withUnsafeMutableBufferPointer { means in
                            inverses.withUnsafeMutableBufferPointer { inverses in
                                forward(x.baseAddress!, weight: w.baseAddress!, bias: b.baseAddress!, y: y.baseAddress!, mean: means.baseAddress!,
                                        inverseDeviation: inverses.baseAddress!, rows: R, channels: C, threads: threads)
                            }
                        }
                    }
                }
            }
        }
        return (y, Statistics(mean: means, inverseDeviation: inverses))
    }

    /// ``forward(_:weight:bias:rows:channels:threads:)`` into the caller's buffers: y (R, C),
    /// mean and σ⁻¹ (R), all overwritten; allocates nothing. Rows split into one contiguous
    /// block per worker (each row's sums are its own, so the split does not change the bits).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public static func forward<T: FFTScalar>(_ x: UnsafePointer<T>, weight w: UnsafePointer<T>, bias b: UnsafePointer<T>,
                                             y: UnsafeMutablePointer<T>, mean: UnsafeMutablePointer<Double>,
                                             inverseDeviation: UnsafeMutablePointer<Double>, rows R: Int, channels C: Int, threads: Int = 1) {
        let workers = R * C < 1 << 14 ? 1 : max(1, min(threads, R))
        let pointers = (SendableBox(x), SendableBox(w), SendableBox(b), SendableBox(y), SendableBox(mean), SendableBox(inverseDeviation))
        WorkerPool.forEachInParallel(workers, threads: workers, (pointers, R, C, workers)) { context, worker, _ in
            let ((x, w, b, y, means, inverses), R, C, workers) = context
            let (px, pw, pb, py) = (x.value, w.value, b.value, y.value)
            for r in R * worker / workers ..< R * (worker + 1) / workers {
                var mean = 0.0
                for c in 0 ..< C { mean += Double(px[r * C + c]) }
                mean /= Double(C)
                var variance = 0.0
                for c in 0 ..< C { let d = Double(px[r * C + c]) - mean; variance += d * d }
                let inverse = 1 / (variance / Double(C) + epsilon).squareRoot()
                for c in 0 ..< C { py[r * C + c] = T((Double(px[r * C + c]) - mean) * inverse) * pw[c] + pb[c] }
                (means.value[r], inverses.value[r]) = (mean, inverse)
            }
        }
    }

    /// dn = dY ⊙ w;  dx += σ⁻¹·(dn − mean(dn) − n·mean(dn ⊙ n));  dw += Σ dY ⊙ n;  db += Σ dY.
    /// Rows split over `threads` workers; each sums dw and db into its own partial, added in
    /// worker order.
    public static func backward<T: FFTScalar>(dY: [T], x: [T], weight w: [T], statistics s: Statistics, rows R: Int, channels C: Int,
                                              dX: inout [T], dWeight: inout [T], dBias: inout [T], threads: Int = 1) {
        precondition(dY.count == R * C && x.count == R * C && dX.count == R * C && w.count == C && dWeight.count == C && dBias.count == C
                     && s.mean.count == R && s.inverseDeviation.count == R, "LayerNorm.backward: counts")
        var scratch = [Double](repeating: 0, count: rowScratchCount(rows: R, channels: C, threads: threads))
        withBackwardPointers(dY, x, w, s, &dX, &dWeight, &dBias, &scratch) { dY, x, w, mean, inverse, dX, dW, db, scratch in
            backward(dY: dY, x: x, weight: w, mean: mean, inverseDeviation: inverse, rows: R, channels: C, dX: dX, dWeight: dW, dBias: db,
                     scratch: scratch, threads: threads)
        }
    }

    /// The Doubles of scratch the row-major backward needs: the partial sums of dw and db per worker.
    public static func rowScratchCount(rows R: Int, channels C: Int, threads: Int) -> Int {
        max(1, min(threads, R)) * 2 * C
    }

    /// The row-major backward on the caller's buffers: dX, dW and db added to (+=); allocates
    /// nothing. Worker j takes the j-th contiguous block of rows and sums dw and db into its own
    /// Double partial in `scratch` (``rowScratchCount(rows:channels:threads:)``); the partials
    /// are added in worker order.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public static func backward<T: FFTScalar>(dY: UnsafePointer<T>, x: UnsafePointer<T>, weight w: UnsafePointer<T>,
                                              mean: UnsafePointer<Double>, inverseDeviation: UnsafePointer<Double>, rows R: Int,
                                              channels C: Int, dX: UnsafeMutablePointer<T>, dWeight: UnsafeMutablePointer<T>,
                                              dBias: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<Double>, threads: Int = 1) {
        let workers = max(1, min(threads, R))
        let pointers = (SendableBox(dY), SendableBox(x), SendableBox(w), SendableBox(dX), SendableBox(mean), SendableBox(inverseDeviation),
                        SendableBox(scratch))
        WorkerPool.forEachInParallel(workers, threads: workers, (pointers, R, C, workers)) { context, worker, _ in
            let ((dY, x, w, dX, means, inverses, scratch), R, C, workers) = context
            let (pdY, px, pw, pdX) = (dY.value, x.value, w.value, dX.value)
            let dw = scratch.value + worker * 2 * C, db = dw + C
            dw.update(repeating: 0, count: 2 * C)
            for r in R * worker / workers ..< R * (worker + 1) / workers {
                let (mean, inverse) = (means.value[r], inverses.value[r])
                var meanDn = 0.0, meanDnN = 0.0
                for c in 0 ..< C {
                    let n = (Double(px[r * C + c]) - mean) * inverse
                    let g = Double(pdY[r * C + c])
                    meanDn += g * Double(pw[c])
                    meanDnN += g * Double(pw[c]) * n
                    dw[c] += g * n
                    db[c] += g
                }
                meanDn /= Double(C)
                meanDnN /= Double(C)
                for c in 0 ..< C {
                    let n = (Double(px[r * C + c]) - mean) * inverse
                    let dn = Double(pdY[r * C + c]) * Double(pw[c])
                    pdX[r * C + c] += T(inverse * (dn - meanDn - n * meanDnN))
                }
            }
        }
        for c in 0 ..< C {
            var (sumW, sumB) = (0.0, 0.0)
            for j in 0 ..< workers { (sumW, sumB) = (sumW + scratch[j * 2 * C + c], sumB + scratch[j * 2 * C + C + c]) }
            dWeight[c] += T(sumW)
            dBias[c] += T(sumB)
        }
    }
}

extension LayerNorm {
    /// LayerNorm over the channels of channel-major sequences x: (B, C, L) (the S4 models'
    /// layout): the same function as ``forward(_:weight:bias:rows:channels:threads:)`` on the
    /// transposed (B·L, C) rows, with statistics (B·L) per position. Sequences run in parallel.
    public static func forwardChannelMajor<T: FFTScalar>(_ x: [T], weight w: [T], bias b: [T], batch B: Int, channels C: Int,
                                                         length L: Int, threads: Int = 1) -> (y: [T], statistics: Statistics) {
        precondition(x.count == B * C * L && w.count == C && b.count == C, "LayerNorm: counts")
        var y = [T](repeating: 0, count: B * C * L)
        var means = [Double](repeating: 0, count: B * L), inverses = means
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                b.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { y in
                        means.withUnsafeMutableBufferPointer { means in
                            inverses.withUnsafeMutableBufferPointer { inverses in
                                forwardChannelMajor(x.baseAddress!, weight: w.baseAddress!, bias: b.baseAddress!, y: y.baseAddress!,
                                                    mean: means.baseAddress!, inverseDeviation: inverses.baseAddress!, batch: B, channels: C,
                                                    length: L, threads: threads)
                            }
                        }
                    }
                }
            }
        }
        return (y, Statistics(mean: means, inverseDeviation: inverses))
    }

    /// ``forwardChannelMajor(_:weight:bias:batch:channels:length:threads:)`` into the caller's
    /// buffers: y (B, C, L), mean and σ⁻¹ (B·L), all overwritten.
    public static func forwardChannelMajor<T: FFTScalar>(_ x: UnsafePointer<T>, weight w: UnsafePointer<T>, bias b: UnsafePointer<T>,
                                                         y: UnsafeMutablePointer<T>, mean: UnsafeMutablePointer<Double>,
                                                         inverseDeviation: UnsafeMutablePointer<Double>, batch B: Int, channels C: Int,
                                                         length L: Int, threads: Int = 1) {
        let pointers = (SendableBox(x), SendableBox(w), SendableBox(b), SendableBox(y), SendableBox(mean), SendableBox(inverseDeviation))
        WorkerPool.forEachInParallel(B, threads: threads, (pointers, C, L)) { context, batch, _ in
            let ((x, w, b, y, mean, inverse), C, L) = context
            layerNormChannelMajorForward(x.value + batch * C * L, weight: w.value, bias: b.value, y: y.value + batch * C * L,
                                         mean: mean.value + batch * L, inverseDeviation: inverse.value + batch * L, channels: C, length: L,
                                         epsilon: epsilon)
        }
    }

    /// The backward pass of ``forwardChannelMajor(_:weight:bias:batch:channels:length:threads:)``;
    /// dw and db summed per worker, then in worker order.
    public static func backwardChannelMajor<T: FFTScalar>(dY: [T], x: [T], weight w: [T], statistics s: Statistics, batch B: Int,
                                                          channels C: Int, length L: Int, dX: inout [T], dWeight: inout [T],
                                                          dBias: inout [T], threads: Int = 1) {
        precondition(dY.count == B * C * L && x.count == B * C * L && dX.count == x.count && w.count == C && dWeight.count == C
                     && dBias.count == C && s.mean.count == B * L && s.inverseDeviation.count == B * L, "LayerNorm.backward: counts")
        var scratch = [Double](repeating: 0, count: channelMajorScratchCount(batch: B, channels: C, length: L, threads: threads))
        withBackwardPointers(dY, x, w, s, &dX, &dWeight, &dBias, &scratch) { dY, x, w, mean, inverse, dX, dW, db, scratch in
            backwardChannelMajor(dY: dY, x: x, weight: w, mean: mean, inverseDeviation: inverse, batch: B, channels: C, length: L, dX: dX,
                                 dWeight: dW, dBias: db, scratch: scratch, threads: threads)
        }
    }

    /// The base addresses of an array backward's buffers, for its pointer form.
    private static func withBackwardPointers<T>(
        _ dY: [T], _ x: [T], _ w: [T], _ s: Statistics, _ dX: inout [T], _ dWeight: inout [T], _ dBias: inout [T], _ scratch: inout [Double],
        _ body: (UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<Double>, UnsafePointer<Double>, UnsafeMutablePointer<T>,
                 UnsafeMutablePointer<T>, UnsafeMutablePointer<T>, UnsafeMutablePointer<Double>) -> Void
    ) {
        dY.withUnsafeBufferPointer { dY in
        x.withUnsafeBufferPointer { x in
        w.withUnsafeBufferPointer { w in
        s.mean.withUnsafeBufferPointer { mean in
        s.inverseDeviation.withUnsafeBufferPointer { inverse in
        dX.withUnsafeMutableBufferPointer { dX in
        dWeight.withUnsafeMutableBufferPointer { dW in
        dBias.withUnsafeMutableBufferPointer { db in
        scratch.withUnsafeMutableBufferPointer { scratch in
            body(dY.baseAddress!, x.baseAddress!, w.baseAddress!, mean.baseAddress!, inverse.baseAddress!, dX.baseAddress!, dW.baseAddress!,
                 db.baseAddress!, scratch.baseAddress!)
        }
        }
        }
        }
        }
        }
        }
        }
        }
    }

    /// The Doubles of scratch the channel-major backward needs: per worker, the partial sums of
    /// dw and db and the kernel's own scratch.
    public static func channelMajorScratchCount(batch B: Int, channels C: Int, length L: Int, threads: Int) -> Int {
        max(1, min(threads, B)) * (2 * C + layerNormChannelMajorScratchCount(length: L))
    }

    /// The channel-major backward on the caller's buffers: dX, dW and db added to (+=). Each
    /// worker takes every `workers`-th sequence and sums dw and db into its own Double partial;
    /// the partials are added in worker order.
    public static func backwardChannelMajor<T: FFTScalar>(dY: UnsafePointer<T>, x: UnsafePointer<T>, weight w: UnsafePointer<T>,
                                                          mean: UnsafePointer<Double>, inverseDeviation: UnsafePointer<Double>,
                                                          batch B: Int, channels C: Int, length L: Int, dX: UnsafeMutablePointer<T>,
                                                          dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
                                                          scratch: UnsafeMutablePointer<Double>, threads: Int = 1) {
        let workers = max(1, min(threads, B))
        let pointers = (SendableBox(dY), SendableBox(x), SendableBox(w), SendableBox(dX), SendableBox(mean), SendableBox(inverseDeviation),
                        SendableBox(scratch))
        let stride = 2 * C + layerNormChannelMajorScratchCount(length: L)
        WorkerPool.forEachInParallel(workers, threads: workers, (pointers, B, C, L, workers, stride)) { context, worker, _ in
            let ((dY, x, w, dX, mean, inverse, scratch), B, C, L, workers, stride) = context
            let dw = scratch.value + worker * stride, db = dw + C
            dw.update(repeating: 0, count: 2 * C)
            for batch in Swift.stride(from: worker, to: B, by: workers) {
                let offset = batch * C * L
                layerNormChannelMajorBackward(dY: dY.value + offset, x: x.value + offset, weight: w.value, mean: mean.value + batch * L,
                                              inverseDeviation: inverse.value + batch * L, dX: dX.value + offset, dWeight: dw, dBias: db,
                                              scratch: db + C, channels: C, length: L)
            }
        }
        for c in 0 ..< C {
            var (sumW, sumB) = (0.0, 0.0)
            for j in 0 ..< workers {
                let dw = scratch + j * stride
                (sumW, sumB) = (sumW + dw[c], sumB + dw[C + c])
            }
            dWeight[c] += T(sumW)
            dBias[c] += T(sumB)
        }
    }
}

/// RMSNorm over the last axis (Mamba's `RMSNorm`, ε = 1e-5), rows x: (R, C):
///
///     ρ⁻¹ = 1/√(mean(x²) + ε),  y = x·ρ⁻¹ ⊙ w
public enum RMSNorm {
    public static let epsilon = 1e-5

    public static func forward<T: FFTScalar>(_ x: [T], weight w: [T], rows R: Int, channels C: Int) -> (y: [T], inverseRMS: [Double]) {
        precondition(x.count == R * C && w.count == C, "RMSNorm: counts")
        var y = [T](repeating: 0, count: R * C)
        var inverses = [Double](repeating: 0, count: R)
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { y in
                    inverses.withUnsafeMutableBufferPointer { i in
                        forward(x.baseAddress!, weight: w.baseAddress!, y: y.baseAddress!, inverseRMS: i.baseAddress!, rows: R, channels: C)
                    }
                }
            }
        }
        return (y, inverses)
    }

    /// ``forward(_:weight:rows:channels:)`` into the caller's y (R, C) and ρ⁻¹ (R).
    /// `epsilon` other than 1e-5 serves pretrained models that set their own.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public static func forward<T: FFTScalar>(_ x: UnsafePointer<T>, weight w: UnsafePointer<T>, y: UnsafeMutablePointer<T>,
                                             inverseRMS: UnsafeMutablePointer<Double>, rows R: Int, channels C: Int,
                                             epsilon: Double = RMSNorm.epsilon) {
        for r in 0 ..< R {
            var squares = 0.0
            for c in 0 ..< C { squares += Double(x[r * C + c]) * Double(x[r * C + c]) }
            let inverse = 1 / (squares / Double(C) + epsilon).squareRoot()
            for c in 0 ..< C { y[r * C + c] = T(Double(x[r * C + c]) * inverse) * w[c] }
            inverseRMS[r] = inverse
        }
    }

    /// n = x·ρ⁻¹, dn = dY ⊙ w;  dx += ρ⁻¹·(dn − n·mean(dn ⊙ n));  dw += Σ dY ⊙ n.
    public static func backward<T: FFTScalar>(dY: [T], x: [T], weight w: [T], inverseRMS: [Double], rows R: Int, channels C: Int,
                                              dX: inout [T], dWeight: inout [T]) {
        precondition(dY.count == R * C && x.count == R * C && dX.count == R * C, "RMSNorm.backward: counts")
        dY.withUnsafeBufferPointer { dY in
            x.withUnsafeBufferPointer { x in
                w.withUnsafeBufferPointer { w in
                    inverseRMS.withUnsafeBufferPointer { i in
                        dX.withUnsafeMutableBufferPointer { dX in
                            dWeight.withUnsafeMutableBufferPointer { dW in
                                backward(dY: dY.baseAddress!, x: x.baseAddress!, weight: w.baseAddress!, inverseRMS: i.baseAddress!, rows: R,
                                         channels: C, dX: dX.baseAddress!, dWeight: dW.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The backward pass on the caller's buffers (dX and dW added to).
    public static func backward<T: FFTScalar>(dY: UnsafePointer<T>, x: UnsafePointer<T>, weight w: UnsafePointer<T>,
                                              inverseRMS: UnsafePointer<Double>, rows R: Int, channels C: Int,
                                              dX: UnsafeMutablePointer<T>, dWeight: UnsafeMutablePointer<T>) {
        for r in 0 ..< R {
            var meanDnN = 0.0
            for c in 0 ..< C {
                let n = Double(x[r * C + c]) * inverseRMS[r]
                meanDnN += Double(dY[r * C + c]) * Double(w[c]) * n
                dWeight[c] += dY[r * C + c] * T(n)
            }
            meanDnN /= Double(C)
            for c in 0 ..< C {
                let n = Double(x[r * C + c]) * inverseRMS[r]
                let dn = Double(dY[r * C + c]) * Double(w[c])
                dX[r * C + c] += T(inverseRMS[r] * (dn - n * meanDnN))
            }
        }
    }
}
