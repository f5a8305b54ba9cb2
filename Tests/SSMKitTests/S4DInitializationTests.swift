import Testing
@testable import SSMKit

@Suite("S4D initializations")
struct S4DInitializationTests {
    @Test("each init gives the official λ and B; Δ is log-uniform in range; seeds repeat",
          arguments: S4DInitialization.allCases)
    func initializations(_ initialization: S4DInitialization) throws {
        let (H, N) = (3, 16)
        let p = try S4DParameters<Double>(channels: H, state: N, initialization: initialization, dtMin: 1e-3, dtMax: 1e-1, seed: 9)
        let again = try S4DParameters<Double>(channels: H, state: N, initialization: initialization, dtMin: 1e-3, dtMax: 1e-1, seed: 9)
        #expect(p.c == again.c && p.logDt == again.logDt, "same seed, same draw")
        #expect(p.logDt.allSatisfy { $0 >= Double.log(1e-3) && $0 <= Double.log(1e-1) })
        let legs = try HiPPO.nplr(.legs, size: N)
        for h in 0 ..< H {
            for n in 0 ..< N / 2 {
                let re = -Double.exp(p.logAReal[h * N / 2 + n]), im = p.aImag[h * N / 2 + n]
                switch initialization {
                case .lin: #expect(re == -0.5 && abs(im - .pi * Double(n)) <= 1e-15 * Double(n + 1))
                case .inv: #expect(re == -0.5 && abs(im - 16 / Double.pi * (16 / (1 + 2 * Double(n)) - 1)) <= 1e-12)
                case .real: #expect(abs(re + Double(n + 1)) <= 1e-14 && im == 0)
                case .legs:
                    #expect(re == -0.5 && abs(im + legs.lambda[n].imaginary) <= 1e-12)
                    #expect(p.b![h * N / 2 + n] == legs.b[n])
                }
            }
        }
        if initialization != .legs { #expect(p.b == nil) }
    }

    @Test("C is complex standard normal: each part has variance ½")
    func cStatistics() throws {
        let p = try S4DParameters<Double>(channels: 64, state: 128, seed: 1)
        let parts = p.c.flatMap { [$0.real, $0.imaginary] }
        let mean = parts.reduce(0, +) / Double(parts.count)
        let variance = parts.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(parts.count)
        // 8192 samples: the standard error of the variance is ~0.5·√(2/8192) ≈ 0.008.
        #expect(abs(mean) < 0.04 && abs(variance - 0.5) < 0.04, "mean \(mean), variance \(variance)")
    }

    @Test("bad sizes and ranges throw")
    func errors() {
        #expect(throws: SSMError.self) { try S4DParameters<Float>(channels: 2, state: 7, seed: 0) }
        #expect(throws: SSMError.self) { try S4DParameters<Float>(channels: 2, state: 8, dtMin: 0.1, dtMax: 0.01, seed: 0) }
    }
}
