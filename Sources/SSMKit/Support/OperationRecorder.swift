import Synchronization

/// Records the GEMMs, the FFT convolutions' transform phases and the selective scans that
/// SSMKit runs inside ``record(_:)``, and replays them alone: the GEMM + FFT (+ scan) bound of
/// that work, with the same shapes, the same libraries and plans, on the same worker threads
/// (`ssm bench train`). A scan is replayed whole (forward, or backward with its recomputation),
/// on the inputs it was given.
///
/// GEMMs are recorded as they are issued (a product split over the workers is one record per
/// block) and replayed on zeroed buffers, all of them in one parallel section over the
/// workers: an idealized lower bound, since the step runs small products on one thread and
/// each replayed worker reuses its operands (which stay in cache). A convolution pass is
/// replayed as its bound (`FFTConvolution.runTransformsOnly`): the same transforms of the same
/// instance with nothing between them; a backward pass is replayed with every gradient's
/// transforms. The recording is process-wide (GEMMs of other threads are recorded too) and
/// keeps the step's convolution instances alive until the recorder is released. A
/// benchmarking tool of the package, not an API.
package final class OperationRecorder: @unchecked Sendable {
    struct GEMM: Sendable {
        var double: Bool
        var transposeA: Bool, transposeB: Bool
        var m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
        var beta: Double
        var aCount: Int { (transposeA ? k : m) * lda }
        var bCount: Int { (transposeB ? n : k) * ldb }
        var cCount: Int { m * ldc }
    }

    /// A convolution phase: `prepare` (untimed: zeroes the scratch), then `run` (timed).
    struct Transforms: Sendable {
        var prepare: @Sendable () -> Void
        var run: @Sendable () -> Void
    }

    private let gemms = Locked<[GEMM]>([])
    private let transforms = Locked<[Transforms]>([])
    private let scans = Locked<[@Sendable () -> Void]>([])

    private static let active = Locked<OperationRecorder?>(nil)
    private static let recording = Atomic<Bool>(false)

    private init() {}

    /// Runs `body` once, recording what it runs (one recording at a time in a process).
    package static func record<R>(_ body: () throws -> R) rethrows -> (result: R, recorder: OperationRecorder) {
        let recorder = OperationRecorder()
        active.withLock { precondition($0 == nil, "OperationRecorder: recordings do not nest"); $0 = recorder }
        recording.store(true, ordering: .sequentiallyConsistent)
        defer {
            recording.store(false, ordering: .sequentiallyConsistent)
            active.withLock { $0 = nil }
        }
        return (try body(), recorder)
    }

    /// Whether a recording is running (a relaxed load: callers check it before building a note).
    static var isRecording: Bool { recording.load(ordering: .relaxed) }

    static func note(_ gemm: GEMM) {
        guard isRecording else { return }
        active.withLock { $0?.gemms.withLock { $0.append(gemm) } }
    }

    @usableFromInline
    static func note(prepare: @escaping @Sendable () -> Void, run: @escaping @Sendable () -> Void) {
        guard isRecording else { return }
        active.withLock { $0?.transforms.withLock { $0.append(Transforms(prepare: prepare, run: run)) } }
    }

    static func noteScan(_ run: @escaping @Sendable () -> Void) {
        guard isRecording else { return }
        active.withLock { $0?.scans.withLock { $0.append(run) } }
    }

    /// Operations recorded: GEMMs (blocks), convolution transform phases and scan passes.
    package var counts: (gemms: Int, transformPhases: Int, scans: Int) {
        (gemms.withLock { $0.count }, transforms.withLock { $0.count }, scans.withLock { $0.count })
    }

    /// Seconds for the recorded selective scans alone (each on its own worker threads).
    package func scanSeconds() -> Double {
        let list = scans.withLock { $0 }
        return list.reduce(0) { $0 + Self.seconds($1) }
    }

    /// Seconds for the recorded GEMMs alone, spread over `threads` workers.
    package func gemmSeconds(threads: Int) -> Double {
        let list = gemms.withLock { $0 }
        guard !list.isEmpty else { return 0 }
        let workers = max(1, min(threads, list.count))
        func largest(_ double: Bool, _ count: (GEMM) -> Int) -> Int { list.filter { $0.double == double }.map(count).max() ?? 0 }
        let buffers = (0 ..< workers).map { _ in
            GEMMBuffers(floats: [largest(false, \.aCount), largest(false, \.bCount), largest(false, \.cCount)],
                        doubles: [largest(true, \.aCount), largest(true, \.bCount), largest(true, \.cCount)])
        }
        let task: @Sendable (Int, Int) -> Void = { index, worker in
            let g = list[index], b = buffers[worker]
            if g.double {
                Double.gemm(transposeA: g.transposeA, transposeB: g.transposeB, m: g.m, n: g.n, k: g.k, alpha: 1, a: b.d[0].base,
                            lda: g.lda, b: b.d[1].base, ldb: g.ldb, beta: g.beta, c: b.d[2].base, ldc: g.ldc)
            } else {
                Float.gemm(transposeA: g.transposeA, transposeB: g.transposeB, m: g.m, n: g.n, k: g.k, alpha: 1, a: b.f[0].base,
                           lda: g.lda, b: b.f[1].base, ldb: g.ldb, beta: Float(g.beta), c: b.f[2].base, ldc: g.ldc)
            }
        }
        return Self.seconds { WorkerPool.shared.runTasks(list.count, workers: workers, task) }
    }

    /// Seconds for the recorded convolutions' transforms alone.
    package func transformSeconds() -> Double {
        let list = transforms.withLock { $0 }
        var total = 0.0
        for t in list {
            t.prepare()
            total += Self.seconds(t.run)
        }
        return total
    }

    private static func seconds(_ body: () -> Void) -> Double {
        ContinuousClock().measure(body).seconds
    }
}

/// One worker's zeroed operands for replayed GEMMs (zeros keep denormals out of the timing).
private struct GEMMBuffers: @unchecked Sendable {
    let f: [AlignedBuffer<Float>]
    let d: [AlignedBuffer<Double>]

    init(floats: [Int], doubles: [Int]) {
        f = floats.map { AlignedBuffer<Float>(count: $0) }
        d = doubles.map { AlignedBuffer<Double>(count: $0) }
    }
}

extension Duration {
    /// The duration in seconds, as a Double (for timings and rates).
    package var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
