import ComplexModule
import RealModule

extension S4DKernel {
    /// K̄[h, l] = 2·Re Σ_n C B β e^{l·log Ā}, every power an exact exponential, in Double:
    /// the definition of ``forward(length:logDt:c:logAReal:aImag:b:k:)``, for tests.
    @inline(never)
    public func reference(length L: Int, logDt: [T], c: [Complex<T>], logAReal: [T], aImag: [T],
                          b: [Complex<T>]? = nil) -> [Double] {
        var k = [Double](repeating: 0, count: channels * L)
        for h in 0 ..< channels {
            for n in 0 ..< modes {
                let (_, _, m) = mode(h, n, logDt: logDt, logAReal: logAReal, aImag: aImag)
                let w = complexDouble(c[h * modes + n]) * complexDouble(b?[h * modes + n] ?? Complex(1)) * m.bBarScale
                for l in 0 ..< L { k[h * L + l] += 2 * (w * Complex.exp(m.logABar.multiplied(by: Double(l)))).real }
            }
        }
        return k
    }
}
