/// The S4 (DPLR) kernel's parameters at the HiPPO-LegS initialization, one SSM for all
/// channels, rank 1 (the official `SSMKernelDPLR` with `init="legs"`), in the layout of
/// ``S4Kernel/forward(length:rate:invDt:aReal:aImag:b:p:cTilde:k:workspace:)``:
///
///     Δ_h log-uniform in [dtMin, dtMax]        invDt: (H) = log Δ
///     λ_n of LegS's NPLR form                  aReal: (N/2) = log(−Re λ),  aImag: (N/2) = −Im λ
///     B̃_n, P_n of the same form                b, p: c(N/2)
///
/// C̃ is left to the caller (the official code draws it complex normal).
public struct S4LegSInitialization<T: FFTScalar>: Sendable {
    public let invDt: [T], aReal: [T], aImag: [T]
    public let b: [Complex<T>], p: [Complex<T>]

    /// Draws Δ from `rng` (H draws), then takes the rest from `HiPPO.nplr(.legs, size: N)`.
    /// - Throws: ``SSMError`` for no channels, an odd or non-positive state size, or
    ///   0 < dtMin ≤ dtMax < ∞ violated.
    public init(channels H: Int, state N: Int, dtMin: Double = 1e-3, dtMax: Double = 1e-1,
                rng: inout SplitMix64) throws(SSMError) {
        guard H >= 1 else { throw SSMError.value(argument: "channels", expected: "at least 1, got \(H)") }
        guard dtMin > 0, dtMin <= dtMax, dtMax.isFinite else {
            throw SSMError.value(argument: "dt_min, dt_max", expected: "0 < dt_min ≤ dt_max, got \(dtMin), \(dtMax)")
        }
        let form = try HiPPO.nplr(.legs, size: N)
        invDt = rng.logTimeSteps(count: H, dtMin: dtMin, dtMax: dtMax).map { T($0) }
        aReal = form.lambda.map { T(Double.log(-$0.real)) }
        aImag = form.lambda.map { T(-$0.imaginary) }
        b = form.b.map { Complex(T($0.real), T($0.imaginary)) }
        p = form.p.map { Complex(T($0.real), T($0.imaginary)) }
    }
}
