extension FFTConvolution {
    /// The direct O(B·C·H·L·Lk) convolution that defines `forward(u:kernel:skip:y:)`: plain
    /// loops over the formula of ``ConvolutionShape``. For tests and cross-checks.
    @inline(never)
    public static func referenceForward(shape s: ConvolutionShape, u: [T], kernel k: [T],
                                        skip: [T]?) -> [T] {
        let (B, H, L, C, Lk) = (s.batch, s.channels, s.length, s.kernelCopies, s.kernelLength)
        var y = [T](repeating: 0, count: s.outputCount)
        for b in 0 ..< B {
            for c in 0 ..< C {
                for h in 0 ..< H {
                    let uRow = (b * H + h) * L
                    for t in 0 ..< L {
                        var sum: T = skip.map { $0[c * H + h] * u[uRow + t] } ?? 0
                        for j in 0 ... min(t, Lk - 1) { sum += k[(c * H + h) * Lk + j] * u[uRow + t - j] }
                        if s.bidirectional {
                            for j in stride(from: 1, through: min(Lk, L - 1 - t), by: 1) {
                                sum += k[(H + h) * Lk + j - 1] * u[uRow + t + j]
                            }
                        }
                        y[((b * C + c) * H + h) * L + t] = sum
                    }
                }
            }
        }
        return y
    }

    /// The direct gradients of ⟨dY, y⟩ (loops over the same index pairs as
    /// ``referenceForward(shape:u:kernel:skip:)``): returns (dU, dK, dD), dD empty without skip.
    @inline(never)
    public static func referenceBackward(shape s: ConvolutionShape, dY: [T], u: [T], kernel k: [T],
                                         skip: [T]?) -> (dU: [T], dK: [T], dD: [T]) {
        let (B, H, L, C, Lk) = (s.batch, s.channels, s.length, s.kernelCopies, s.kernelLength)
        var dU = [T](repeating: 0, count: s.inputCount)
        var dK = [T](repeating: 0, count: s.kernelCount)
        var dD = [T](repeating: 0, count: skip == nil ? 0 : s.skipCount)
        for b in 0 ..< B {
            for c in 0 ..< C {
                for h in 0 ..< H {
                    let uRow = (b * H + h) * L
                    for t in 0 ..< L {
                        let g = dY[((b * C + c) * H + h) * L + t]
                        if let skip {
                            dU[uRow + t] += skip[c * H + h] * g
                            dD[c * H + h] += u[uRow + t] * g
                        }
                        for j in 0 ... min(t, Lk - 1) {
                            dU[uRow + t - j] += k[(c * H + h) * Lk + j] * g
                            dK[(c * H + h) * Lk + j] += u[uRow + t - j] * g
                        }
                        if s.bidirectional {
                            for j in stride(from: 1, through: min(Lk, L - 1 - t), by: 1) {
                                dU[uRow + t + j] += k[(H + h) * Lk + j - 1] * g
                                dK[(H + h) * Lk + j - 1] += u[uRow + t + j] * g
                            }
                        }
                    }
                }
            }
        }
        return (dU, dK, dD)
    }
}
