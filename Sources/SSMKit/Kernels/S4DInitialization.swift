import ComplexModule
import RealModule

/// The diagonal initializations of S4D (Gu et al. 2022, "On the Parameterization and
/// Initialization of Diagonal State Space Models"), as the official `dplr(init=…)`.
///
/// Every one sets Re λ = −½ except S4D-Real; the imaginary parts are (n = 0 … N/2 − 1):
public enum S4DInitialization: String, Sendable, CaseIterable {
    /// S4D-Lin: Im λ_n = π·n, B = 1 (the S4D paper's default).
    case lin
    /// S4D-Inv: Im λ_n = (N/π)·(N/(2n + 1) − 1), B = 1 (the asymptotics of HiPPO-LegS).
    case inv
    /// S4D-LegS: Λ and B̃ of HiPPO-LegS's NPLR form (Im λ from its eigenvalues, B complex).
    case legs
    /// S4D-Real: λ_n = −(n + 1), B = 1.
    case real
}

extension S4DInitialization {
    /// The N/2 modes of this initialization: −Re λ, Im λ, and B (nil for B = 1).
    /// - Throws: ``SSMError`` for an odd or non-positive N.
    public func modes(state N: Int) throws(SSMError) -> (realPart: [Double], imagPart: [Double], b: [Complex<Double>]?) {
        guard N >= 2, N % 2 == 0 else { throw SSMError.value(argument: "state", expected: "an even N ≥ 2, got \(N)") }
        let n2 = N / 2
        let index = (0 ..< n2).map(Double.init)
        switch self {
        case .lin: return ([Double](repeating: 0.5, count: n2), index.map { .pi * $0 }, nil)
        case .inv: return ([Double](repeating: 0.5, count: n2), index.map { Double(N) / .pi * (Double(N) / (1 + 2 * $0) - 1) }, nil)
        case .real: return (index.map { 1 + $0 }, [Double](repeating: 0, count: n2), nil)
        case .legs:
            let form = try HiPPO.nplr(.legs, size: N)
            return ([Double](repeating: 0.5, count: n2), form.lambda.map { -$0.imaginary }, form.b)
        }
    }
}

/// Parameters of ``S4DKernel`` (official `S4DKernel` names in the comments).
public struct S4DParameters<T: FFTScalar>: Sendable {
    /// `log_dt`: (H)
    public var logDt: [T]
    /// `C`: c(H, N2)
    public var c: [Complex<T>]
    /// `log_A_real`: (H, N2)
    public var logAReal: [T]
    /// `A_imag`: (H, N2)
    public var aImag: [T]
    /// `B`: c(H, N2), or nil for B = 1.
    public var b: [Complex<T>]?

    /// Parameters as given (for instance read from a checkpoint).
    public init(logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T], b: [Complex<T>]?) {
        (self.logDt, self.c, self.logAReal, self.aImag, self.b) = (logDt, c, logAReal, aImag, b)
    }

    /// Seeded initialization: Δ log-uniform in [dtMin, dtMax] per channel (the official
    /// `log_dt`), C complex standard normal (each part of variance ½, as `torch.randn(cfloat)`),
    /// and λ, B of `initialization`.
    /// - Throws: ``SSMError`` for non-positive sizes, an odd state size, or 0 < dtMin ≤ dtMax violated.
    public init(channels H: Int, state N: Int, initialization: S4DInitialization = .lin,
                dtMin: Double = 1e-3, dtMax: Double = 1e-1, seed: UInt64) throws(SSMError) {
        guard H >= 1 else { throw SSMError.value(argument: "channels", expected: "a positive count, got \(H)") }
        guard N >= 2, N % 2 == 0 else { throw SSMError.value(argument: "state", expected: "an even N ≥ 2, got \(N)") }
        guard dtMin > 0, dtMin <= dtMax else {
            throw SSMError.value(argument: "dt_min, dt_max", expected: "0 < dt_min ≤ dt_max, got \(dtMin), \(dtMax)")
        }
        let n2 = N / 2
        var rng = SplitMix64(seed: seed)
        logDt = rng.logTimeSteps(count: H, dtMin: dtMin, dtMax: dtMax).map { T($0) }
        c = (0 ..< H * n2).map { _ in
            let (x, y) = rng.nextStandardNormalPair()
            return Complex(T(x * 0.5.squareRoot()), T(y * 0.5.squareRoot()))
        }
        let (realPart, imagPart, bRow) = try initialization.modes(state: N)
        logAReal = (0 ..< H * n2).map { T(Double.log(realPart[$0 % n2])) }
        aImag = (0 ..< H * n2).map { T(imagPart[$0 % n2]) }
        b = bRow.map { row in (0 ..< H * n2).map { Complex(T(row[$0 % n2].real), T(row[$0 % n2].imaginary)) } }
    }
}

extension SplitMix64 {
    /// log Δ for `count` channels, log-uniform in [dtMin, dtMax]: the official S4 and S4D
    /// `log_dt` draw (one draw per channel).
    public mutating func logTimeSteps(count: Int, dtMin: Double = 1e-3, dtMax: Double = 1e-1) -> [Double] {
        (0 ..< count).map { _ in Double.random(in: Double.log(dtMin) ... Double.log(dtMax), using: &self) }
    }

    /// Two independent standard normal numbers (Box–Muller).
    public mutating func nextStandardNormalPair() -> (Double, Double) {
        let u = Double.random(in: Double.ulpOfOne ..< 1, using: &self)
        let v = Double.random(in: 0 ..< 1, using: &self)
        let r = (-2 * Double.log(u)).squareRoot()
        return (r * Double.cos(2 * .pi * v), r * Double.sin(2 * .pi * v))
    }
}
