import ArgumentParser
import SSMKit

/// `ssm eval fftconv`: causal (or bidirectional) long convolution, forward and backward.
struct EvalFFTConv: EvalCommand {
    static let configuration = CommandConfiguration(
        commandName: "fftconv",
        abstract: "Causal long convolution y = k ∗ u + D·u by FFT (backward when d_y is given).",
        discussion: """
        in: u (B, H, L); k (H, Lk) or (C, H, Lk), 1 ≤ Lk ≤ L; optional D (H) or (C, H); optional d_y.
        out: y (B, H, L) for a 2-D k, (B, C, H, L) for a 3-D k; with d_y also d_u, d_k (and d_D).
        --bidirectional: k is (2, H, Lk); k[1, h, j−1] multiplies u[t + j].
        """
    )

    @OptionGroup var options: EvalOptions

    @Flag(name: .long, help: "Bidirectional kernel: k is (2, H, Lk).")
    var bidirectional = false

    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)] {
        let u = try inputs.required("u", "(B, H, L)", ranks: [3])
        let (B, H, L) = (u.shape[0], u.shape[1], u.shape[2])
        let kShapes = bidirectional ? "(2, \(H), Lk) with 1 ≤ Lk ≤ \(L)" : "(\(H), Lk) or (C, \(H), Lk) with 1 ≤ Lk ≤ \(L)"
        let k = try inputs.required("k", kShapes, ranks: bidirectional ? [3] : [2, 3])
        let threeD = k.shape.count == 3
        let rows = threeD ? k.shape[0] : 1
        let (kH, Lk) = (k.shape[k.shape.count - 2], k.shape[k.shape.count - 1])
        guard kH == H, Lk >= 1, Lk <= L, rows >= 1, !bidirectional || rows == 2 else {
            throw SSMError.shape(argument: "k", expected: kShapes, actual: k.shape)
        }
        let C = bidirectional ? 1 : rows
        let dShape = threeD && !bidirectional ? [C, H] : [H]
        let d = try inputs.optional("D", "(\(dShape.map(String.init).joined(separator: ", ")))", ranks: [dShape.count])
        if let d, d.shape != dShape {
            throw SSMError.shape(argument: "D", expected: "(\(dShape.map(String.init).joined(separator: ", ")))", actual: d.shape)
        }
        let yShape = threeD && !bidirectional ? [B, C, H, L] : [B, H, L]
        let dY = try inputs.optional("d_y", "the shape of y", ranks: [yShape.count])
        if let dY, dY.shape != yShape {
            throw SSMError.shape(argument: "d_y", expected: "the shape of y (\(yShape.map(String.init).joined(separator: ", ")))", actual: dY.shape)
        }
        try inputs.finish("u, k, optional D and optional d_y")

        let shape = ConvolutionShape(batch: B, channels: H, length: L, kernelLength: Lk,
                                     kernelCopies: C, bidirectional: bidirectional)
        let conv = try FFTConvolution<T>(shape: shape, threads: options.threads)
        var y = [T](repeating: 0, count: shape.outputCount)
        try conv.forward(u: u.scalars, kernel: k.scalars, skip: d?.scalars, y: &y)
        var outputs: [(name: String, value: SafeTensorsValue)] = [("y", .init(Tensor(shape: yShape, scalars: y)))]
        if let dY {
            var dU: [T]? = [T](repeating: 0, count: shape.inputCount)
            var dK: [T]? = [T](repeating: 0, count: shape.kernelCount)
            var dD: [T]? = d.map { [T](repeating: 0, count: $0.count) }
            try conv.backward(dY: dY.scalars, u: u.scalars, kernel: k.scalars, skip: d?.scalars,
                              dU: &dU, dK: &dK, dD: &dD)
            outputs.append(("d_u", .init(Tensor(shape: u.shape, scalars: dU!))))
            outputs.append(("d_k", .init(Tensor(shape: k.shape, scalars: dK!))))
            if let d, let dD { outputs.append(("d_D", .init(Tensor(shape: d.shape, scalars: dD)))) }
        }
        return outputs
    }
}
