import ComplexModule
import RealModule

/// Discretization of a diagonal continuous SSM, one mode at a time.
///
/// Legend: Δ step (real, > 0) · λ continuous eigenvalue (complex, Re λ < 0).
///
///     ZOH:      Ā = e^{Δλ},                 B̄ = (e^{Δλ} − 1)/λ · B
///     bilinear: Ā = (1 + Δλ/2)/(1 − Δλ/2),  B̄ = Δ/(1 − Δλ/2) · B
///
/// (Design and Mathematics, "The state space model and its discretization".) `expMinusOne` keeps e^{Δλ} − 1 accurate when |Δλ| is tiny,
/// where computing e^{Δλ} and subtracting 1 would cancel most of its digits.
public enum Discretization: String, Sendable, CaseIterable {
    case zoh
    case bilinear
}

/// One discretized mode and the derivatives the backward passes need.
@usableFromInline
struct DiscreteMode<T: Real & BinaryFloatingPoint>: Sendable where T: Sendable {
    /// Ā = z.
    @usableFromInline var aBar: Complex<T>
    /// B̄ / B = β.
    @usableFromInline var bBarScale: Complex<T>
    /// log Ā (Δλ for ZOH, log((1 + Δλ/2)/(1 − Δλ/2)) for bilinear): powers Ā^l = e^{l·log Ā}.
    @usableFromInline var logABar: Complex<T>
    /// ∂Ā/∂λ, ∂Ā/∂Δ, ∂β/∂λ, ∂β/∂Δ (holomorphic in λ).
    @usableFromInline var dABarDLambda: Complex<T>
    @usableFromInline var dABarDDelta: Complex<T>
    @usableFromInline var dBetaDLambda: Complex<T>
    @usableFromInline var dBetaDDelta: Complex<T>

    /// Discretizes mode λ with step Δ.
    @inlinable
    init(_ method: Discretization, delta: T, lambda: Complex<T>) {
        let dl = lambda.multiplied(by: delta)
        switch method {
        case .zoh:
            // β = (e^{Δλ} − 1)/λ; at λ → 0 its limit is Δ (λ = 0 is outside the S4D domain,
            // Re λ < 0, but the limit keeps the function total).
            let z = Complex<T>.exp(dl)
            let em1 = Complex<T>.expMinusOne(dl)
            let beta = lambda == .zero ? Complex(delta) : em1 / lambda
            aBar = z
            bBarScale = beta
            logABar = dl
            dABarDLambda = z.multiplied(by: delta)
            dABarDDelta = z * lambda
            // ∂β/∂λ = (Δ·e^{Δλ} − β)/λ, limit Δ²/2 at λ = 0.
            dBetaDLambda = lambda == .zero ? Complex(delta * delta / 2) : (z.multiplied(by: delta) - beta) / lambda
            dBetaDDelta = z
        case .bilinear:
            let x = dl.divided(by: 2)
            let d = Complex<T>(1) - x
            let d2 = d * d
            let z = (Complex<T>(1) + x) / d
            aBar = z
            bBarScale = Complex(delta) / d
            // log z = log(1 + x) − log(1 − x), each through log(onePlus:) for small |x|.
            logABar = Complex<T>.log(onePlus: x) - Complex<T>.log(onePlus: -x)
            dABarDLambda = Complex(delta) / d2
            dABarDDelta = lambda / d2
            dBetaDLambda = Complex(delta * delta / 2) / d2
            dBetaDDelta = Complex(1) / d2
        }
    }
}
