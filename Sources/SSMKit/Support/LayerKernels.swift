import CSSMKitKernels

// C kernels of CSSMKitKernels that SSMTraining's layers call, generic over the scalar.
//
// The channel-major LayerNorm of one sequence, x: (C, L), is in normalization.c (vectorized
// along the positions; statistics and sums in Double for both precisions); SSMTraining's
// `LayerNorm` runs one call per sequence on each worker.

/// out[r] += Σ_j x[r·cols + j], r < rows, in an order fixed by `cols` alone (`ssm_row_sums_f32`).
package func addRowSums<T: FFTScalar>(_ x: UnsafePointer<T>, rows: Int, cols: Int, into out: UnsafeMutablePointer<T>) {
    if T.self == Float.self {
        ssm_row_sums_f32(float(x), rows, cols, float(out))
    } else {
        precondition(T.self == Double.self, "addRowSums: Float or Double")
        ssm_row_sums_f64(double(x), rows, cols, double(out))
    }
}

/// y (C, L), mean and σ⁻¹ (L) from x (C, L), weight and bias (C): see `ssm_layer_norm_cm_forward_f32`.
package func layerNormChannelMajorForward<T: FFTScalar>(_ x: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>,
                                                        y: UnsafeMutablePointer<T>, mean: UnsafeMutablePointer<Double>,
                                                        inverseDeviation: UnsafeMutablePointer<Double>, channels C: Int, length L: Int,
                                                        epsilon: Double) {
    if T.self == Float.self {
        ssm_layer_norm_cm_forward_f32(float(x), float(weight), float(bias), float(y), mean, inverseDeviation, C, L, epsilon)
    } else {
        precondition(T.self == Double.self, "layerNormChannelMajorForward: Float or Double")
        ssm_layer_norm_cm_forward_f64(double(x), double(weight), double(bias), double(y), mean, inverseDeviation, C, L, epsilon)
    }
}

/// dX (C, L) += and the Double sums dw, db (C) += of the backward pass: see
/// `ssm_layer_norm_cm_backward_f32`. `scratch` holds ``layerNormChannelMajorScratchCount(length:)`` Doubles.
package func layerNormChannelMajorBackward<T: FFTScalar>(dY: UnsafePointer<T>, x: UnsafePointer<T>, weight: UnsafePointer<T>,
                                                         mean: UnsafePointer<Double>, inverseDeviation: UnsafePointer<Double>,
                                                         dX: UnsafeMutablePointer<T>, dWeight: UnsafeMutablePointer<Double>,
                                                         dBias: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Double>,
                                                         channels C: Int, length L: Int) {
    if T.self == Float.self {
        ssm_layer_norm_cm_backward_f32(float(dY), float(x), float(weight), mean, inverseDeviation, float(dX), dWeight, dBias, scratch, C, L)
    } else {
        precondition(T.self == Double.self, "layerNormChannelMajorBackward: Float or Double")
        ssm_layer_norm_cm_backward_f64(double(dY), double(x), double(weight), mean, inverseDeviation, double(dX), dWeight, dBias, scratch, C, L)
    }
}

/// The Doubles of scratch one ``layerNormChannelMajorBackward(dY:x:weight:mean:inverseDeviation:dX:dWeight:dBias:scratch:channels:length:)`` call needs.
package func layerNormChannelMajorScratchCount(length L: Int) -> Int { 2 * min(L, Int(SSM_LAYER_NORM_TILE)) }

/// GLU's gate σ(g) and output a·σ(g) of `count` values, or residual + a·σ(g) when `residual`
/// is given (`ssm_glu_forward_f32`: the vectorized exponential of the scan, then 1/(1 + e^{−g})).
package func gluForward<T: FFTScalar>(_ a: UnsafePointer<T>, _ g: UnsafePointer<T>, residual: UnsafePointer<T>?, y: UnsafeMutablePointer<T>,
                                      gate: UnsafeMutablePointer<T>, count: Int) {
    if T.self == Float.self {
        ssm_glu_forward_f32(float(a), float(g), residual.map { float($0) }, float(y), float(gate), count)
    } else {
        precondition(T.self == Double.self, "gluForward: Float or Double")
        ssm_glu_forward_f64(double(a), double(g), residual.map { double($0) }, double(y), double(gate), count)
    }
}

/// GLU's backward from the kept gate s: dA = dY ⊙ s, dG = dY ⊙ a ⊙ s ⊙ (1 − s), written or added
/// (`ssm_glu_backward_f32`).
package func gluBackward<T: FFTScalar>(dY: UnsafePointer<T>, a: UnsafePointer<T>, gate: UnsafePointer<T>, dA: UnsafeMutablePointer<T>,
                                       dG: UnsafeMutablePointer<T>, count: Int, accumulate: Bool) {
    if T.self == Float.self {
        ssm_glu_backward_f32(float(dY), float(a), float(gate), float(dA), float(dG), count, accumulate ? 1 : 0)
    } else {
        precondition(T.self == Double.self, "gluBackward: Float or Double")
        ssm_glu_backward_f64(double(dY), double(a), double(gate), double(dA), double(dG), count, accumulate ? 1 : 0)
    }
}

@inline(__always) private func float<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Float> { UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) }
@inline(__always) private func float<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}
@inline(__always) private func double<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Double> { UnsafeRawPointer(p).assumingMemoryBound(to: Double.self) }
@inline(__always) private func double<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Double> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Double.self)
}
