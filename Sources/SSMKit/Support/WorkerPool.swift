import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Persistent worker threads that run one job at a time without allocating.
///
/// `DispatchQueue.concurrentPerform` allocates a few blocks per call, which would break the
/// engine's promise of no allocation in steady-state forward and backward passes. The pool's
/// threads are created on first use and then wait on a condition variable; a job is a
/// non-escaping closure run once per worker index, the caller itself taking index 0. When the
/// pool is already running another caller's job, the call falls back to `concurrentPerform`,
/// so concurrent callers never wait for each other.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    // All state below is guarded by `mutex`; the pointers are allocated once and never freed
    // (the pool lives as long as the process).
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let start: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    /// Held for the whole of a job: a second caller that cannot take it falls back.
    private let busy: UnsafeMutablePointer<pthread_mutex_t>
    private var threadCount = 0
    private var generation = 0
    private var job: UnsafeSendableWorker?
    private var participants = 0
    private var nextIndex = 0
    private var pending = 0

    private init() {
        mutex = .allocate(capacity: 1)
        busy = .allocate(capacity: 1)
        start = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_mutex_init(busy, nil)
        pthread_cond_init(start, nil)
        pthread_cond_init(done, nil)
    }

    /// Calls `body(index)` once for each index in `0 ..< workers`, in parallel, and returns when
    /// all calls have returned. Index 0 runs on the calling thread.
    func run(workers: Int, _ body: (Int) -> Void) {
        if workers <= 1 { if workers == 1 { body(0) }; return }
        guard pthread_mutex_trylock(busy) == 0 else {
            withoutActuallyEscaping(body) { body in
                let task = UnsafeSendableWorker(body)
                DispatchQueue.concurrentPerform(iterations: workers) { task.body($0) }
            }
            return
        }
        defer { pthread_mutex_unlock(busy) }
        withoutActuallyEscaping(body) { body in
            pthread_mutex_lock(mutex)
            while threadCount < workers - 1 { spawnThread() }
            job = UnsafeSendableWorker(body)
            participants = workers
            nextIndex = 1
            pending = workers - 1
            generation &+= 1
            pthread_cond_broadcast(start)
            pthread_mutex_unlock(mutex)

            body(0)

            pthread_mutex_lock(mutex)
            while pending > 0 { pthread_cond_wait(done, mutex) }
            job = nil
            pthread_mutex_unlock(mutex)
        }
    }

    /// Called with `mutex` held, before the job's generation is published: the new thread
    /// takes part in every generation after the current one.
    private func spawnThread() {
        threadCount += 1
        let context = Unmanaged.passRetained(ThreadStart(pool: self, generation: generation)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { context in
            let start = Unmanaged<ThreadStart>.fromOpaque(context!).takeRetainedValue()
            start.pool.workerLoop(after: start.generation)
            return nil
        }, context)
        precondition(status == 0, "WorkerPool: pthread_create failed with \(status)")
        pthread_detach(thread)
    }

    private final class ThreadStart {
        let pool: WorkerPool
        let generation: Int
        init(pool: WorkerPool, generation: Int) { self.pool = pool; self.generation = generation }
    }

    private func workerLoop(after firstSeen: Int) {
        pthread_mutex_lock(mutex)
        var seen = firstSeen
        while true {
            while generation == seen { pthread_cond_wait(start, mutex) }
            seen = generation
            guard nextIndex < participants, let job else { continue }
            let index = nextIndex
            nextIndex += 1
            pthread_mutex_unlock(mutex)
            job.body(index)
            pthread_mutex_lock(mutex)
            pending -= 1
            if pending == 0 { pthread_cond_signal(done) }
        }
    }
}

/// A worker body that may cross threads; it is only called while `run` is on the stack.
struct UnsafeSendableWorker: @unchecked Sendable {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
