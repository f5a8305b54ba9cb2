import Testing
@testable import SSMKit

struct S4RecurrenceCase: CustomStringConvertible, Sendable {
    var mode: S4Recurrence.StepMode, B: Int, C: Int, H: Int, N2: Int, R: Int, L: Int
    var description: String { "\(mode) B=\(B) C=\(C) H=\(H) N2=\(N2) R=\(R) L=\(L)" }
}

@Suite("S4 recurrent mode")
struct S4RecurrenceTests {
    static let cases: [S4RecurrenceCase] = S4Recurrence.StepMode.allCases.flatMap { m in
        [S4RecurrenceCase(mode: m, B: 1, C: 1, H: 1, N2: 2, R: 1, L: 1),
         S4RecurrenceCase(mode: m, B: 2, C: 2, H: 2, N2: 4, R: 2, L: 101),
         S4RecurrenceCase(mode: m, B: 1, C: 1, H: 2, N2: 4, R: 1, L: 16384)]
    }

    @Test("Double: stepping from zero = convolution mode (kernel from C̃, FFT convolution, D) to 1e-10",
          arguments: cases)
    func convolutionEqualsRecurrence(_ c: S4RecurrenceCase) throws {
        let p = TestS4Parameters(copies: c.C, channels: c.H, ssms: c.H, modes: c.N2, rank: c.R, seed: 31)
        let kernel = try S4Kernel<Double>(copies: c.C, channels: c.H, ssms: c.H, modes: c.N2, rank: c.R)
        var rng = SplitMix64(seed: 32)
        let u: [Double] = .random(c.B * c.H * c.L, &rng), d: [Double] = .random(c.C * c.H, &rng)
        let k = try p.kernel(kernel, c.L)
        let conv = try FFTConvolution<Double>(shape: ConvolutionShape(batch: c.B, channels: c.H, length: c.L, kernelCopies: c.C),
                                              effort: .estimate)
        var yConv = [Double](repeating: 0, count: c.B * c.C * c.H * c.L)
        try conv.forward(u: u, kernel: k, skip: d, y: &yConv)
        let recurrence = try S4Recurrence(kernel: kernel, mode: c.mode, length: c.L, invDt: p.invDt, aReal: p.aReal, aImag: p.aImag,
                                          b: p.b, p: p.p, cTilde: p.c, skip: d)
        var state = try recurrence.makeState(batch: c.B)
        var yRec = [Double](repeating: 0, count: yConv.count)
        try recurrence.run(&state, u: u, y: &yRec, length: c.L)
        // The diagonal mode inherits the condition number of Ā's eigenvectors (random DPLR
        // parameters keep it small here; the README notes the LegS case).
        #expect(relativeError(yRec, yConv) <= 1e-10, "\(c)")
    }
}
