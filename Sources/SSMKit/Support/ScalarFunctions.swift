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

/// GELU and GELU′ of `count` values: y = v·Φ(v), d = Φ(v) + v·φ(v) with Φ(v) = (1 + erf(v/√2))/2
/// and φ(v) = e^{−v²/2}/√(2π); `d` serves as scratch for e^{−v²/2} (vectorized exponential) on
/// the way, so `y` and `d` must not overlap `x`. Float evaluates erf branch-free in C
/// (`ssm_gelu_f32`, within 3 ulp), Double on the C library's erf. Elementwise: a value does not
/// depend on how the caller splits the rows.
@_specialize(exported: true, where T == Float)
@_specialize(exported: true, where T == Double)
@usableFromInline
package func geluWithDerivative<T: FFTScalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ d: UnsafeMutablePointer<T>, count: Int) {
    for i in 0 ..< count { d[i] = -x[i] * x[i] / 2 }
    T.vectorExp(d, d, count)
    if T.self == Float.self {
        ssm_gelu_f32(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self),
                     UnsafeMutableRawPointer(d).assumingMemoryBound(to: Float.self), count)
        return
    }
    let norm = 1 / (2 * T.pi).squareRoot()
    for i in 0 ..< count {
        let v = x[i]
        let phi = (1 + T.erf(v / T(2).squareRoot())) / 2
        y[i] = v * phi
        d[i] = phi + v * d[i] * norm
    }
}
