import CSSMKitKernels
// The scalar nonlinearities that the engine and the training layers share, each written once.

/// The logistic function σ(v) = 1/(1 + e^{−v}).
@inlinable
package func sigmoid<T: Real>(_ v: T) -> T { 1 / (1 + T.exp(-v)) }

/// SiLU(v) = v·σ(v), computed as v / (1 + e^{−v}) (one rounding fewer).
@inlinable
package func silu<T: Real>(_ v: T) -> T { v / (1 + T.exp(-v)) }

/// SiLU′(v) = σ(v)·(1 + v·(1 − σ(v))).
@inlinable
package func siluDerivative<T: Real>(_ v: T) -> T {
    let s = sigmoid(v)
    return s * (1 + v * (1 - s))
}

/// softplus(v) = log(1 + eᵛ), and v itself above 20 (as the official selective scan).
@inlinable
package func softplus<T: Real>(_ v: T) -> T { v > 20 ? v : T.log(onePlus: T.exp(v)) }

/// GELU and GELU′ of `count` floats in one vectorized pass (the C kernel `ssm_gelu_f32`, erf
/// within 3 ulp): on entry `d` holds e^{−x²/2}; on return y = GELU(x) and d = GELU′(x).
package func vectorGELU(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ count: Int) {
    ssm_gelu_f32(x, y, d, count)
}
