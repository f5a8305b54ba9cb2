import ComplexModule
import RealModule

/// The scratch of an ``S4Kernel`` generating or differentiating kernels of one length: each
/// worker's buffers for the Cauchy sums and the Woodbury solve (forward) or the adjoint
/// (backward), its FFT rows, and the inverse FFT's plan. Made once per length (a mixer keeps
/// one) and passed to every call, so that a call allocates nothing; one call at a time may use
/// it. Without one, the kernel makes a workspace per call.
public final class S4KernelWorkspace<T: FFTScalar>: @unchecked Sendable {
    /// The discrete length L' the kernel is generated at (L at rate 1).
    public let length: Int
    let kernel: S4Kernel<T>
    let workers: Int
    let fft: RealFFT<T>
    let real: AlignedBuffer<T>, spectra: AlignedBuffer<Complex<T>>
    let realStride: Int, spectrumStride: Int
    /// Per worker: `perWorker` complex Doubles, laid out by ``ForwardScratch`` or ``BackwardScratch``.
    let scratch: UnsafeMutablePointer<Complex<Double>>
    let perWorker: Int
    /// The nodes ω_j = e^{−2πij/L'}, j = 0 … ⌊L'/2⌋.
    let omegas: UnsafeMutablePointer<Complex<Double>>

    /// - Throws: ``SSMError`` for a length below 1.
    public init(_ kernel: S4Kernel<T>, length L: Int) throws(SSMError) {
        guard L >= 1 else { throw SSMError.value(argument: "length", expected: "L ≥ 1, got \(L)") }
        (self.kernel, length) = (kernel, L)
        workers = max(1, kernel.threads)
        fft = FFT.plan(size: L, as: T.self, effort: kernel.effort)
        realStride = alignedStride(L, of: T.self)
        spectrumStride = alignedStride(L / 2 + 1, of: Complex<T>.self)
        real = AlignedBuffer(count: workers * realStride)
        spectra = AlignedBuffer(count: workers * spectrumStride)
        perWorker = max(ForwardScratch.count(kernel, length: L), BackwardScratch.count(kernel, length: L))
        scratch = .allocate(capacity: workers * perWorker)
        scratch.initialize(repeating: .zero, count: workers * perWorker)
        omegas = .allocate(capacity: L / 2 + 1)
        for j in 0 ... L / 2 {
            let angle = -2 * Double.pi * Double(j) / Double(L)
            omegas[j] = Complex(Double.cos(angle), Double.sin(angle))
        }
    }

    deinit {
        scratch.deallocate()
        omegas.deallocate()
    }

    func matches(_ kernel: S4Kernel<T>, length L: Int) -> Bool {
        length == L && workers >= max(1, kernel.threads) && self.kernel.modes == kernel.modes && self.kernel.rank == kernel.rank
    }

    func worker(_ w: Int) -> UnsafeMutablePointer<Complex<Double>> { scratch + w * perWorker }
}

/// Hands out consecutive slices of a scratch block.
struct ScratchCursor {
    var next: UnsafeMutablePointer<Complex<Double>>

    mutating func take(_ count: Int) -> UnsafeMutablePointer<Complex<Double>> {
        defer { next += count }
        return next
    }

    /// `count` Doubles (half as many complex slots, rounded up).
    mutating func doubles(_ count: Int) -> UnsafeMutablePointer<Double> {
        UnsafeMutableRawPointer(take((count + 1) / 2)).assumingMemoryBound(to: Double.self)
    }
}

/// One worker's buffers for `S4Kernel.spectrum`.
struct ForwardScratch {
    let weightG, weightOne, lambdaRe, lambdaAbs2, gRe, gIm, rRe, rIm, work: UnsafeMutablePointer<Double>
    let lambda, out, m, rhs: UnsafeMutablePointer<Complex<Double>>

    init<T>(_ kernel: S4Kernel<T>, length L: Int, _ base: UnsafeMutablePointer<Complex<Double>>) {
        let (N2, R) = (kernel.modes, kernel.rank)
        let pairs = (R + 1) * (R + 1), nodes = L / 2 + 1
        var c = ScratchCursor(next: base)
        (weightG, weightOne) = (c.doubles(pairs * N2), c.doubles(pairs * N2))
        (lambdaRe, lambdaAbs2, gRe, gIm) = (c.doubles(N2), c.doubles(N2), c.doubles(nodes), c.doubles(nodes))
        (rRe, rIm, work) = (c.doubles(nodes * pairs), c.doubles(nodes * pairs), c.doubles(8 * N2))
        (lambda, out, m, rhs) = (c.take(N2), c.take(nodes), c.take(R * R), c.take(R))
    }

    static func count<T>(_ kernel: S4Kernel<T>, length L: Int) -> Int {
        let (N2, R) = (kernel.modes, kernel.rank)
        let pairs = (R + 1) * (R + 1), nodes = L / 2 + 1
        let halves = [pairs * N2, pairs * N2, N2, N2, nodes, nodes, nodes * pairs, nodes * pairs, 8 * N2].reduce(0) { $0 + ($1 + 1) / 2 }
        return halves + N2 + nodes + R * R + R
    }
}

/// One worker's buffers for the backward pass of one channel. The split real / imaginary
/// Doubles are the C adjoint's (`ssm_cauchy_adjoint_sums_f64`, `…_accumulate_f64`): node rows
/// of `pairs` values and mode rows of `stride` values (the modes rounded up to 8).
struct BackwardScratch {
    let gradK, lambda, left, right, gradLeft, gradRight, e, m, mCopy, mT, xs, ys: UnsafeMutablePointer<Complex<Double>>
    let stride: Int
    let gRe, gIm, lambdaRe, lambdaIm, vRe, vIm, invRe, invIm, invConjRe, invConjIm: UnsafeMutablePointer<Double>
    let rRe, rIm, dgRe, dgIm, eRe, eIm, uRe, uIm, wRe, wIm: UnsafeMutablePointer<Double>
    let xLambdaRe, xLambdaIm, yLambdaRe, yLambdaIm, work: UnsafeMutablePointer<Double>

    init<T>(_ kernel: S4Kernel<T>, length L: Int, _ base: UnsafeMutablePointer<Complex<Double>>) {
        let (N2, R) = (kernel.modes, kernel.rank)
        let (rows, pairs, nodes) = (R + 1, (R + 1) * (R + 1), L / 2 + 1)
        stride = Self.stride(N2)
        var c = ScratchCursor(next: base)
        (gradK, lambda, left, right) = (c.take(nodes), c.take(N2), c.take(rows * N2), c.take(rows * N2))
        (gradLeft, gradRight, e) = (c.take(rows * N2), c.take(rows * N2), c.take(pairs))
        (m, mCopy, mT, xs, ys) = (c.take(R * R), c.take(R * R), c.take(R * R), c.take(R), c.take(R))
        (gRe, gIm, lambdaRe, lambdaIm) = (c.doubles(nodes), c.doubles(nodes), c.doubles(N2), c.doubles(N2))
        (vRe, vIm) = (c.doubles(pairs * stride), c.doubles(pairs * stride))
        (invRe, invIm) = (c.doubles(nodes * stride), c.doubles(nodes * stride))
        (invConjRe, invConjIm) = (c.doubles(nodes * stride), c.doubles(nodes * stride))
        (rRe, rIm, dgRe, dgIm) = (c.doubles(nodes * pairs), c.doubles(nodes * pairs), c.doubles(nodes * pairs), c.doubles(nodes * pairs))
        (eRe, eIm) = (c.doubles(nodes * pairs), c.doubles(nodes * pairs))
        (uRe, uIm, wRe, wIm) = (c.doubles(pairs * stride), c.doubles(pairs * stride), c.doubles(pairs * stride), c.doubles(pairs * stride))
        (xLambdaRe, xLambdaIm, yLambdaRe, yLambdaIm) = (c.doubles(stride), c.doubles(stride), c.doubles(stride), c.doubles(stride))
        work = c.doubles(4 * 8 * stride)
    }

    static func stride(_ modes: Int) -> Int { (modes + 7) / 8 * 8 }

    static func count<T>(_ kernel: S4Kernel<T>, length L: Int) -> Int {
        let (N2, R) = (kernel.modes, kernel.rank)
        let (rows, pairs, nodes, stride) = (R + 1, (R + 1) * (R + 1), L / 2 + 1, Self.stride(kernel.modes))
        let complex = nodes + N2 + 4 * rows * N2 + pairs + 3 * R * R + 2 * R
        let doubles = [nodes, nodes, N2, N2] + [Int](repeating: pairs * stride, count: 2) + [Int](repeating: nodes * stride, count: 4)
            + [Int](repeating: nodes * pairs, count: 6) + [Int](repeating: pairs * stride, count: 4) + [Int](repeating: stride, count: 4)
            + [4 * 8 * stride]
        return complex + doubles.reduce(0) { $0 + ($1 + 1) / 2 }
    }
}

/// ``solveSmall(_:_:_:)`` on nested arrays (m is R × R), for the paths that run once per call.
func solveSmall(_ m: inout [[Complex<Double>]], _ rhs: inout [Complex<Double>]) {
    let n = rhs.count
    var flat = m.flatMap { $0 }
    flat.withUnsafeMutableBufferPointer { f in rhs.withUnsafeMutableBufferPointer { r in solveSmall(f.baseAddress!, r.baseAddress!, n) } }
    for i in 0 ..< n { for k in 0 ..< n { m[i][k] = flat[i * n + k] } }
}

/// Solves m·x = rhs in place (x returned in rhs) for a small complex n × n system stored
/// row-major at `m` (overwritten), with partial pivoting.
func solveSmall(_ m: UnsafeMutablePointer<Complex<Double>>, _ rhs: UnsafeMutablePointer<Complex<Double>>, _ n: Int) {
    // Rank 1, the usual case, once per node: the one division the loops below come down to.
    if n == 1 {
        rhs[0] = rhs[0] / m[0]
        return
    }
    for col in 0 ..< n {
        var pivot = col
        for row in col + 1 ..< max(col + 1, n) where m[row * n + col].length > m[pivot * n + col].length { pivot = row }
        if pivot != col {
            for k in 0 ..< n { (m[pivot * n + k], m[col * n + k]) = (m[col * n + k], m[pivot * n + k]) }
            (rhs[pivot], rhs[col]) = (rhs[col], rhs[pivot])
        }
        for row in col + 1 ..< max(col + 1, n) {
            let f = m[row * n + col] / m[col * n + col]
            for k in col ..< n { m[row * n + k] = m[row * n + k] - f * m[col * n + k] }
            rhs[row] = rhs[row] - f * rhs[col]
        }
    }
    for row in stride(from: n - 1, through: 0, by: -1) {
        var s = rhs[row]
        for k in row + 1 ..< max(row + 1, n) { s = s - m[row * n + k] * rhs[k] }
        rhs[row] = s / m[row * n + row]
    }
}
