import Testing
@testable import SSMKit

@Suite("FFT layer")
struct FFTTests {
    @Test("fast sizes are the smallest 7-smooth numbers at or above the request")
    func fastSizes() {
        var next = 1
        // Brute force: walk up to the next 7-smooth number.
        for m in 1 ... 5000 {
            if next < m { next = m }
            while !FFTSize.isFast(next) { next += 1 }
            #expect(FFTSize.fast(atLeast: m) == next, "m = \(m)")
        }
        #expect(FFTSize.isFast(FFTSize.fast(atLeast: (1 << 20) + 1)))
        #expect(FFTSize.fast(atLeast: 0) == 1)
    }

    @Test("rfft then irfft returns n·x; a delta has a flat spectrum", arguments: [1, 2, 7, 12, 100, 4097])
    func roundTrip(n: Int) {
        useTestPlanner()
        let fft = FFT.plan(size: n, as: Double.self)
        let real = AlignedBuffer<Double>(count: alignedStride(n, of: Double.self))
        let spectrum = AlignedBuffer<Complex<Double>>(count: alignedStride(n / 2 + 1, of: Complex<Double>.self))
        var rng = SeededGenerator(seed: UInt64(n))
        let x: [Double] = .random(n, &rng)
        for i in 0 ..< n { real.base[i] = x[i] }
        fft.forward(real.base, spectrum.base)
        // Spectrum against the DFT definition.
        for k in 0 ... n / 2 {
            var re = 0.0, im = 0.0
            for t in 0 ..< n {
                let angle = -2 * Double.pi * Double(k * t % n) / Double(n)
                re += x[t] * .cos(angle); im += x[t] * .sin(angle)
            }
            #expect(abs(spectrum.base[k].real - re) < 1e-12 * Double(n), "n = \(n), k = \(k)")
            #expect(abs(spectrum.base[k].imaginary - im) < 1e-12 * Double(n), "n = \(n), k = \(k)")
        }
        fft.inverse(spectrum.base, real.base)
        for i in 0 ..< n { #expect(abs(real.base[i] / Double(n) - x[i]) < 1e-14, "n = \(n), i = \(i)") }
    }

    @Test("plans are cached: one object per (precision, size, effort)")
    func planCache() {
        let a = FFT.plan(size: 96, as: Float.self, effort: .estimate)
        let b = FFT.plan(size: 96, as: Float.self, effort: .estimate)
        let c = FFT.plan(size: 96, as: Double.self, effort: .estimate)
        #expect(a === b)
        #expect(ObjectIdentifier(a) != ObjectIdentifier(c))
    }

    @Test("wisdom round-trips through a file; a foreign file is refused")
    func wisdom() throws {
        _ = FFT.plan(size: 210, as: Double.self, effort: .measure)
        _ = FFT.plan(size: 210, as: Float.self, effort: .measure)
        let path = "/tmp/ssmkit-test-wisdom-\(UInt32.random(in: 0 ... .max))"
        defer { unlinkFile(path) }
        try FFT.exportWisdom(to: path)
        let text = String(decoding: try FileIO.readAll(path), as: UTF8.self)
        #expect(text.hasPrefix(WisdomFile.marker))
        #expect(text.contains("fftw-3"), "the file holds FFTW's own wisdom blocks")
        try FFT.importWisdom(from: path)
        try FileIO.writeAtomically(Array("not wisdom".utf8), to: path)
        #expect(throws: WisdomError.self) { try FFT.importWisdom(from: path) }
        #expect(throws: WisdomError.self) { try FFT.importWisdom(from: path + ".absent") }
    }
}

#if canImport(Glibc)
import Glibc
#endif
func unlinkFile(_ path: String) { _ = unlink(path) }
