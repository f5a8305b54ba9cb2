import ComplexModule
import RealModule

/// C̃ bookkeeping (official `SSMKernelDPLR._setup_C`): the kernel's generating function at the
/// L-th roots of unity is that of the truncated kernel only when its output vector is
/// C̃ = (I − Ā^L)ᵀ C. These convert a true C to C̃ for L, double the attuned length
/// (C̃_2L = (I + Ā^L)ᵀ C̃_L, since I − Ā^{2L} = (I − Ā^L)(I + Ā^L)), and recover C for
/// stepping by solving (I − Ā^L)ᵀ C = C̃. Ā is the dense bilinear discretization of the full
/// conjugate-pair system A = diag(λ, conj λ) − Σ_r p_r p_r*, in Double; Ā^L by repeated squaring.
/// Cost O(N³ log L) per (copy, channel): set-up work, not a hot loop.
extension S4Kernel {
    /// Ā (N × N, N = 2·N2) for SSM `s` at step Δ.
    func denseABar(ssm s: Int, delta: Double, aReal: [T], aImag: [T], p: [Complex<T>]) -> [[Complex<Double>]] {
        let n = 2 * modes
        func pair(_ v: (Int) -> Complex<Double>) -> [Complex<Double>] { (0 ..< modes).map(v) + (0 ..< modes).map { v($0).conjugate } }
        let lambda = pair { Complex(-Double.exp(Double(aReal[s * modes + $0])), -Double(aImag[s * modes + $0])) }
        let ps = (0 ..< rank).map { r in pair { complexDouble(p[(r * ssms + s) * modes + $0]) } }
        var a = (0 ..< n).map { i in (0 ..< n).map { j in i == j ? lambda[i] : Complex<Double>.zero } }
        for pr in ps { for i in 0 ..< n { for j in 0 ..< n { a[i][j] = a[i][j] - pr[i] * pr[j].conjugate } } }
        let minus = (0 ..< n).map { i in (0 ..< n).map { j in Complex(i == j ? 1 : 0) - a[i][j].multiplied(by: delta / 2) } }
        let columns = (0 ..< n).map { j -> [Complex<Double>] in
            var m = minus
            var rhs = (0 ..< n).map { i in Complex(i == j ? 1 : 0) + a[i][j].multiplied(by: delta / 2) }
            solveSmall(&m, &rhs)
            return rhs
        }
        return (0 ..< n).map { i in (0 ..< n).map { j in columns[j][i] } }
    }

    /// M^L by repeated squaring.
    func matrixPower(_ m: [[Complex<Double>]], _ exponent: Int) -> [[Complex<Double>]] {
        let n = m.count
        func product(_ x: [[Complex<Double>]], _ y: [[Complex<Double>]]) -> [[Complex<Double>]] {
            (0 ..< n).map { i in (0 ..< n).map { j in (0 ..< n).reduce(Complex<Double>.zero) { $0 + x[i][$1] * y[$1][j] } } }
        }
        var result = (0 ..< n).map { i in (0 ..< n).map { j in Complex<Double>(i == j ? 1 : 0) } }
        var base = m, e = exponent
        while e > 0 {
            if e & 1 == 1 { result = product(result, base) }
            e >>= 1
            if e > 0 { base = product(base, base) }
        }
        return result
    }

    enum CTildeMap { case attune, double, recover }

    func mapC(_ c: [Complex<T>], length L: Int, invDt: [T], aReal: [T], aImag: [T], p: [Complex<T>],
              _ map: CTildeMap) throws(SSMError) -> [Complex<T>] {
        guard L >= 1 else { throw SSMError.value(argument: "length", expected: "L ≥ 1, got \(L)") }
        try check(invDt: invDt, aReal: aReal, aImag: aImag, b: nil, p: p, cTilde: c)
        let n = 2 * modes
        var out = c
        for h in 0 ..< channels {
            let power = matrixPower(denseABar(ssm: h % ssms, delta: Double.exp(Double(invDt[h])), aReal: aReal, aImag: aImag, p: p), L)
            for copy in 0 ..< copies {
                let base = (copy * channels + h) * modes
                let half = (0 ..< modes).map { complexDouble(c[base + $0]) }
                let full = half + half.map(\.conjugate)
                var result: [Complex<Double>]
                switch map {
                case .attune, .double:
                    // (I ∓ Ā^L)ᵀ x: x − (Ā^L)ᵀ x, or x + (Ā^L)ᵀ x when doubling.
                    let sign: Double = map == .attune ? -1 : 1
                    result = (0 ..< n).map { i in full[i] + (0 ..< n).reduce(Complex<Double>.zero) { $0 + power[$1][i] * full[$1] }.multiplied(by: sign) }
                case .recover:
                    var system = (0 ..< n).map { i in (0 ..< n).map { j in Complex(i == j ? 1 : 0) - power[j][i] } }
                    result = full
                    solveSmall(&system, &result)
                }
                for m in 0 ..< modes { out[base + m] = complexT(result[m], T.self) }
            }
        }
        // A singular I − Ā^L (an undamped mode, Ā^L = 1) or an Ā^L that overflowed at this L
        // leaves no finite C.
        guard out.allSatisfy({ $0.real.isFinite && $0.imaginary.isFinite }) else {
            throw SSMError.value(argument: "C", expected: map == .recover
                ? "a finite C for C̃ at L = \(L) (I − Ā^L is singular or Ā^L overflowed: an undamped or growing mode)"
                : "finite values of C̃ at L = \(L) (Ā^L overflowed: a growing mode)")
        }
        return out
    }

    /// C̃ = (I − Ā^L)ᵀ C for a true C: (C, H, N2) (official `_setup_C(L)` from an unattuned kernel).
    public func attune(c: [Complex<T>], length L: Int, invDt: [T], aReal: [T], aImag: [T], p: [Complex<T>]) throws(SSMError) -> [Complex<T>] {
        try mapC(c, length: L, invDt: invDt, aReal: aReal, aImag: aImag, p: p, .attune)
    }

    /// C̃ attuned to 2L from C̃ attuned to L (official `_setup_C` doubling).
    public func doubleAttunedLength(cTilde: [Complex<T>], from L: Int, invDt: [T], aReal: [T], aImag: [T], p: [Complex<T>]) throws(SSMError) -> [Complex<T>] {
        try mapC(cTilde, length: L, invDt: invDt, aReal: aReal, aImag: aImag, p: p, .double)
    }

    /// The true C from C̃ attuned to L, for step mode: solves (I − Ā^L)ᵀ C = C̃.
    /// - Throws: when I − Ā^L is singular (an undamped mode with Ā^L = 1).
    public func recoverC(cTilde: [Complex<T>], length L: Int, invDt: [T], aReal: [T], aImag: [T], p: [Complex<T>]) throws(SSMError) -> [Complex<T>] {
        try mapC(cTilde, length: L, invDt: invDt, aReal: aReal, aImag: aImag, p: p, .recover)
    }
}
