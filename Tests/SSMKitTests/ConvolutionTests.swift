import Dispatch
import Testing
@testable import SSMKit

/// One convolution problem of the sweep.
struct ConvolutionCase: CustomStringConvertible, Sendable {
    var shape: ConvolutionShape
    var skip: Bool
    var description: String { "\(shape)\(skip ? " +D" : "")" }

    static func make(_ b: Int, _ h: Int, _ l: Int, _ lk: Int? = nil, c: Int = 1,
                     bidirectional: Bool = false, skip: Bool = true) -> ConvolutionCase {
        ConvolutionCase(shape: ConvolutionShape(batch: b, channels: h, length: l, kernelLength: lk,
                                                kernelCopies: c, bidirectional: bidirectional),
                        skip: skip)
    }

    /// Seeded inputs (u, k, D) for this case.
    func inputs<T: FFTScalar>(_: T.Type, seed: UInt64 = 7) -> (u: [T], k: [T], d: [T]?) {
        var rng = SeededGenerator(seed: seed &+ UInt64(shape.hashValue & 0xFFFF))
        return (.random(shape.inputCount, &rng), .random(shape.kernelCount, &rng),
                skip ? .random(shape.skipCount, &rng) : nil)
    }
}

/// The sweep of the foundation issue: L ∈ {1, 2, 7, 100, 1000, 4097, 65536}, Lk < L and Lk = L,
/// C > 1, B > 1, with and without D, bidirectional.
let convolutionSweep: [ConvolutionCase] = [
    .make(1, 1, 1), .make(1, 1, 1, skip: false), .make(2, 3, 1, c: 2),
    .make(1, 2, 2), .make(3, 1, 2, 1), .make(1, 1, 2, bidirectional: true),
    .make(2, 3, 7), .make(1, 2, 7, 3, c: 3), .make(2, 2, 7, 4, bidirectional: true, skip: false),
    .make(2, 4, 100), .make(1, 3, 100, 37, c: 2, skip: false), .make(3, 2, 100, 100, bidirectional: true),
    .make(2, 3, 1000, 1000), .make(1, 2, 1000, 300, c: 2), .make(1, 2, 1000, 999, bidirectional: true),
    .make(2, 2, 4097, 4097), .make(1, 1, 4097, 1000, c: 3), .make(1, 1, 4097, 4097, bidirectional: true),
    .make(1, 1, 65536, 512), .make(2, 1, 65536, 65536, skip: false), .make(1, 1, 65536, 256, bidirectional: true),
]

@Suite("FFT convolution")
struct ConvolutionTests {
    init() { useTestPlanner() }

    @Test("Double: FFT convolution = direct convolution to 1e-12 relative", arguments: convolutionSweep)
    func forwardDouble(_ c: ConvolutionCase) throws {
        // The direct reference costs B·C·H·L·Lk; the 65536 × 65536 case would take minutes, so
        // it is checked at its first 4096 outputs only (wrap-around errors would show anywhere).
        let (u, k, d) = c.inputs(Double.self)
        let conv = try FFTConvolution<Double>(shape: c.shape, threads: 2)
        var y = [Double](repeating: .nan, count: c.shape.outputCount)
        try conv.forward(u: u, kernel: k, skip: d, y: &y)
        let reference = referenceOrPrefix(c, u: u, k: k, d: d)
        let fast = prefix(y, c, reference.length)
        // FFT round-off grows like eps·log n relative to the output scale; 1e-12 leaves a wide
        // margin at n = 2^17 (observed ~1e-15) while any indexing error gives O(1).
        #expect(relativeError(fast, reference.y) <= 1e-12, "\(c)")
    }

    @Test("Float: error ≤ 1e-5 · Σ|k| · max|u| against the Double direct convolution", arguments: convolutionSweep)
    func forwardFloat(_ c: ConvolutionCase) throws {
        let (u, k, d) = c.inputs(Float.self)
        let conv = try FFTConvolution<Float>(shape: c.shape, threads: 2)
        var y = [Float](repeating: .nan, count: c.shape.outputCount)
        try conv.forward(u: u, kernel: k, skip: d, y: &y)
        let reference = referenceOrPrefix(c, u: u.map(Double.init), k: k.map(Double.init), d: d?.map(Double.init))
        let fast = prefix(y, c, reference.length)
        // Bound of the issue: relative to the largest possible output, Σ|k|·max|u| (+|D|).
        let bound = (k.reduce(0) { $0 + Double(abs($1)) } + (d.map(maxAbs) ?? 0)) * maxAbs(u)
        let err = zip(fast, reference.y).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) }
        #expect(err / bound <= 1e-5, "\(c): error \(err / bound)")
    }

    @Test("Double backward: dU, dK, dD equal the direct gradients to 1e-12",
          arguments: convolutionSweep.filter { $0.shape.length * $0.shape.kernelLength <= 1 << 24 })
    func backwardDouble(_ c: ConvolutionCase) throws {
        let (u, k, d) = c.inputs(Double.self)
        var rng = SeededGenerator(seed: 99)
        let dY: [Double] = .random(c.shape.outputCount, &rng)
        let conv = try FFTConvolution<Double>(shape: c.shape, threads: 2)
        var dU: [Double]? = [Double](repeating: 0, count: c.shape.inputCount)
        var dK: [Double]? = [Double](repeating: 0, count: c.shape.kernelCount)
        var dD: [Double]? = d == nil ? nil : [Double](repeating: 0, count: c.shape.skipCount)
        try conv.backward(dY: dY, u: u, kernel: k, skip: d, dU: &dU, dK: &dK, dD: &dD)
        let reference = FFTConvolution<Double>.referenceBackward(shape: c.shape, dY: dY, u: u, kernel: k, skip: d)
        #expect(relativeError(dU!, reference.dU) <= 1e-12, "\(c): dU")
        #expect(relativeError(dK!, reference.dK) <= 1e-12, "\(c): dK")
        if let dD { #expect(relativeError(dD, reference.dD) <= 1e-12, "\(c): dD") }
    }

    @Test("Double backward against central finite differences of ⟨dY, y⟩",
          arguments: convolutionSweep.filter { $0.shape.length <= 1000 })
    func backwardFiniteDifferences(_ c: ConvolutionCase) throws {
        let (u, k, d) = c.inputs(Double.self)
        var rng = SeededGenerator(seed: 5)
        let dY: [Double] = .random(c.shape.outputCount, &rng)
        let conv = try FFTConvolution<Double>(shape: c.shape, threads: 1)
        func loss(_ u: [Double], _ k: [Double], _ d: [Double]?) throws -> Double {
            var y = [Double](repeating: 0, count: c.shape.outputCount)
            try conv.forward(u: u, kernel: k, skip: d, y: &y)
            return dot(dY, y)
        }
        var dU: [Double]? = [Double](repeating: 0, count: c.shape.inputCount)
        var dK: [Double]? = [Double](repeating: 0, count: c.shape.kernelCount)
        var dD: [Double]? = d == nil ? nil : [Double](repeating: 0, count: c.shape.skipCount)
        try conv.backward(dY: dY, u: u, kernel: k, skip: d, dU: &dU, dK: &dK, dD: &dD)
        // Directional derivatives along random directions, and a few single coordinates. The loss
        // is bilinear in (u, k, D), so central differences have no truncation error at any step:
        // what remains is the rounding of the two loss values, about eps64 · Σ|dY ⊙ y| each,
        // divided by 2·step. The tolerance is 100× that estimate.
        let eps = 1e-3
        var y0 = [Double](repeating: 0, count: c.shape.outputCount)
        try conv.forward(u: u, kernel: k, skip: d, y: &y0)
        let lossScale = zip(dY, y0).reduce(0) { $0 + abs($1.0 * $1.1) }
        let tolerance = 100 * Double.ulpOfOne * max(1, lossScale) / eps
        let (vu, vk): ([Double], [Double]) = (.random(u.count, &rng), .random(k.count, &rng))
        let vd: [Double]? = d.map { .random($0.count, &rng) }
        func shifted(_ x: [Double], _ v: [Double], _ s: Double) -> [Double] { zip(x, v).map { $0 + s * $1 } }
        let fd = (try loss(shifted(u, vu, eps), shifted(k, vk, eps), d.map { shifted($0, vd!, eps) })
            - loss(shifted(u, vu, -eps), shifted(k, vk, -eps), d.map { shifted($0, vd!, -eps) })) / (2 * eps)
        let analytic = dot(dU!, vu) + dot(dK!, vk) + (dD.map { dot($0, vd!) } ?? 0)
        #expect(abs(fd - analytic) <= tolerance, "\(c): fd \(fd) vs \(analytic)")
        for index in [0, u.count / 2, u.count - 1] {
            var up = u, down = u
            up[index] += eps; down[index] -= eps
            let g = (try loss(up, k, d) - loss(down, k, d)) / (2 * eps)
            #expect(abs(g - dU![index]) <= tolerance, "\(c): dU[\(index)]")
        }
        for index in [0, k.count - 1] {
            var up = k, down = k
            up[index] += eps; down[index] -= eps
            let g = (try loss(u, up, d) - loss(u, down, d)) / (2 * eps)
            #expect(abs(g - dK![index]) <= tolerance, "\(c): dK[\(index)]")
        }
    }

    @Test("GELU fused into forward's copy-out, and its derivative into backward's copy-in, equal the separate passes bit for bit",
          arguments: [ConvolutionCase.make(1, 1, 1), .make(2, 3, 7, c: 2), .make(3, 2, 100, 37, skip: false),
                      .make(1, 2, 1000, 999, bidirectional: true), .make(2, 4, 1024)])
    func fusedGELU(_ c: ConvolutionCase) throws {
        try fusedGELU(c, Float.self)
        try fusedGELU(c, Double.self)
    }

    private func fusedGELU<T: FFTScalar>(_ c: ConvolutionCase, _: T.Type) throws {
        let (u, k, d) = c.inputs(T.self)
        var rng = SeededGenerator(seed: 11)
        let dY: [T] = .random(c.shape.outputCount, &rng)
        let conv = try FFTConvolution<T>(shape: c.shape, threads: 2)
        let n = c.shape.outputCount
        // Separate passes: z, then GELU and GELU′ of all of z, then backward of dY ⊙ GELU′.
        var z = [T](repeating: .nan, count: n)
        try conv.forward(u: u, kernel: k, skip: d, y: &z)
        var (g, derivative) = ([T](repeating: .nan, count: n), [T](repeating: .nan, count: n))
        geluWithDerivative(z, &g, &derivative, count: n)
        let zeros = { (count: Int) in [T](repeating: 0, count: count) }
        var (dU, dK, dD): ([T]?, [T]?, [T]?) = (zeros(c.shape.inputCount), zeros(c.shape.kernelCount), d.map { _ in zeros(c.shape.skipCount) })
        try conv.backward(dY: zip(dY, derivative).map { $0 * $1 }, u: u, kernel: k, skip: d, dU: &dU, dK: &dK, dD: &dD)
        // Fused.
        var (fusedG, fusedDerivative) = ([T](repeating: .nan, count: n), [T](repeating: .nan, count: n))
        var (fU, fK, fD) = (zeros(c.shape.inputCount), zeros(c.shape.kernelCount), zeros(c.shape.skipCount))
        withOptionalPointer(d) { skip in
            conv.forward(u: u, kernel: k, skip: skip, y: &fusedG, geluDerivative: &fusedDerivative)
            conv.backward(dY: dY, u: u, kernel: k, skip: skip, dU: &fU, dK: &fK, dD: &fD, outputDerivative: fusedDerivative)
        }
        #expect(fusedG == g, "\(c) \(T.self): GELU(z)")
        #expect(fusedDerivative == derivative, "\(c) \(T.self): GELU′(z)")
        #expect(fU == dU!, "\(c) \(T.self): dU")
        #expect(fK == dK!, "\(c) \(T.self): dK")
        if let dD { #expect(fD == dD, "\(c) \(T.self): dD") }
    }

    @Test("backward accumulates: a second call adds the same gradients again")
    func backwardAccumulates() throws {
        let c = ConvolutionCase.make(2, 3, 50, 20, c: 2)
        let (u, k, d) = c.inputs(Double.self)
        var rng = SeededGenerator(seed: 3)
        let dY: [Double] = .random(c.shape.outputCount, &rng)
        let conv = try FFTConvolution<Double>(shape: c.shape)
        var dU: [Double]? = [Double](repeating: 0, count: c.shape.inputCount)
        var dK: [Double]? = [Double](repeating: 0, count: c.shape.kernelCount)
        var dD: [Double]? = [Double](repeating: 0, count: c.shape.skipCount)
        try conv.backward(dY: dY, u: u, kernel: k, skip: d, dU: &dU, dK: &dK, dD: &dD)
        let once = (dU!, dK!, dD!)
        try conv.backward(dY: dY, u: u, kernel: k, skip: d, dU: &dU, dK: &dK, dD: &dD)
        #expect(relativeError(dU!, once.0.map { 2 * $0 }) <= 1e-15)
        #expect(relativeError(dK!, once.1.map { 2 * $0 }) <= 1e-15)
        #expect(relativeError(dD!, once.2.map { 2 * $0 }) <= 1e-15)
    }

    @Test("concurrent calls from several threads are bit-identical to serial ones, at any thread count")
    func concurrency() throws {
        let c = ConvolutionCase.make(3, 8, 1000, 700, c: 2)
        let (u, k, d) = c.inputs(Float.self)
        var rng = SeededGenerator(seed: 11)
        let dY: [Float] = .random(c.shape.outputCount, &rng)
        @Sendable func run(threads: Int) throws -> [[Float]] {
            let conv = try FFTConvolution<Float>(shape: c.shape, threads: threads)
            var y = [Float](repeating: 0, count: c.shape.outputCount)
            try conv.forward(u: u, kernel: k, skip: d, y: &y)
            var dU: [Float]? = [Float](repeating: 0, count: c.shape.inputCount)
            var dK: [Float]? = [Float](repeating: 0, count: c.shape.kernelCount)
            var dD: [Float]? = [Float](repeating: 0, count: c.shape.skipCount)
            try conv.backward(dY: dY, u: u, kernel: k, skip: d, dU: &dU, dK: &dK, dD: &dD)
            return [y, dU!, dK!, dD!]
        }
        let serial = try run(threads: 1)
        #expect(try run(threads: 3) == serial, "3 worker threads")
        let results = ResultBox(count: 6)
        DispatchQueue.concurrentPerform(iterations: 6) { i in
            results.set(i, try? run(threads: 1 + i % 3))
        }
        for i in 0 ..< 6 { #expect(results.get(i) == serial, "concurrent caller \(i)") }
    }

    @Test("wrong shapes and impossible options throw errors that name the argument")
    func errors() throws {
        #expect(throws: SSMError.value(argument: "kernelLength", expected: "1 ≤ Lk ≤ L = 4, got Lk = 5")) {
            try FFTConvolution<Double>(shape: ConvolutionShape(batch: 1, channels: 1, length: 4, kernelLength: 5))
        }
        #expect(throws: SSMError.self) {
            try FFTConvolution<Double>(shape: ConvolutionShape(batch: 0, channels: 1, length: 4))
        }
        #expect(throws: SSMError.self) {
            try FFTConvolution<Double>(shape: ConvolutionShape(batch: 1, channels: 1, length: 4, kernelCopies: 2, bidirectional: true))
        }
        #expect(throws: SSMError.self) {
            try FFTConvolution<Double>(shape: ConvolutionShape(batch: 1, channels: 1, length: 4), threads: 0)
        }
        let conv = try FFTConvolution<Double>(shape: ConvolutionShape(batch: 2, channels: 3, length: 10))
        var y = [Double](repeating: 0, count: 60)
        do {
            try conv.forward(u: [Double](repeating: 0, count: 59), kernel: [Double](repeating: 0, count: 30), y: &y)
            Issue.record("a short u was accepted")
        } catch { #expect("\(error)".hasPrefix("u: shape (59)")) }
        #expect(throws: SSMError.self) {
            try conv.forward(u: [Double](repeating: 0, count: 60), kernel: [Double](repeating: 0, count: 30),
                             skip: [1], y: &y)
        }
    }
}

/// Collects results from concurrent workers.
final class ResultBox: Sendable {
    private let values: Locked<[[[Float]]?]>
    init(count: Int) { values = Locked(Array(repeating: nil, count: count)) }
    func set(_ i: Int, _ v: [[Float]]?) { values.withLock { $0[i] = v } }
    func get(_ i: Int) -> [[Float]]? { values.withLock { $0[i] } }
}

/// The direct reference, over the first `length` outputs of each row when the full one is too
/// slow for a test (L · Lk > 2^26).
func referenceOrPrefix(_ c: ConvolutionCase, u: [Double], k: [Double], d: [Double]?) -> (y: [Double], length: Int) {
    let s = c.shape
    guard s.length * s.kernelLength > 1 << 26 else {
        return (FFTConvolution<Double>.referenceForward(shape: s, u: u, kernel: k, skip: d), s.length)
    }
    // Causal outputs before `m` depend only on inputs before `m`: truncate and compare a prefix.
    precondition(!s.bidirectional, "prefix check is for causal cases")
    let m = 4096
    var t = s
    t.length = m
    t.kernelLength = min(s.kernelLength, m)
    var uPrefix: [Double] = [], kPrefix: [Double] = []
    for row in 0 ..< s.batch * s.channels { uPrefix += u[row * s.length ..< row * s.length + m] }
    for row in 0 ..< s.kernelRows * s.channels {
        kPrefix += k[row * s.kernelLength ..< row * s.kernelLength + t.kernelLength]
    }
    return (FFTConvolution<Double>.referenceForward(shape: t, u: uPrefix, kernel: kPrefix, skip: d), m)
}

/// The first `length` samples of every (b, c, h) row of y.
func prefix<T>(_ y: [T], _ c: ConvolutionCase, _ length: Int) -> [T] {
    let L = c.shape.length
    guard length < L else { return y }
    var out: [T] = []
    for row in 0 ..< y.count / L { out += y[row * L ..< row * L + length] }
    return out
}
