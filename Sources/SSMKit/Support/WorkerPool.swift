import CSSMKitKernels
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Persistent worker threads that run one job at a time without allocating.
///
/// `DispatchQueue.concurrentPerform` allocates a few blocks per call, and so does handing a
/// non-escaping closure to other threads (`withoutActuallyEscaping` boxes it), and so does an
/// escaping closure that captures anything; any of them would break the engine's promise of no
/// allocation in steady-state passes. The pool's threads are created on first use and then wait
/// on a condition variable. A job is a ``ParallelLoop`` value on the caller's stack (the workers
/// get its address and its type: nothing is allocated), or a long-lived closure the caller made
/// once (storing it is a retain), and a task count; workers claim
/// task indices one at a time from an atomic counter (dynamic scheduling, so a slow core does
/// not hold up the others), the calling thread working as worker 0. When the pool is already
/// running another caller's job, the call falls back to `concurrentPerform`, so concurrent
/// callers never wait for each other.
@usableFromInline
package final class WorkerPool: @unchecked Sendable {
    @usableFromInline static let shared = WorkerPool()

    // All state below is guarded by `mutex`; the pointers are allocated once and never freed
    // (the pool lives as long as the process).
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let start: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    /// Held for the whole of a job: a second caller that cannot take it falls back.
    private let busy: UnsafeMutablePointer<pthread_mutex_t>
    private var threadCount = 0
    private var generation = 0
    private var job: Job?
    private var taskCount = 0
    private let claim = Atomic<Int>(0)
    private var participants = 0
    private var nextIndex = 0
    private var pending = 0
    /// `generation`, readable without the mutex: what a spinning worker watches.
    private let published = Atomic<Int>(0)
    /// Workers of the current job still working, readable without the mutex.
    private let remaining = Atomic<Int>(0)
    /// Pause hints a thread spins for (about 20–60 µs) before it sleeps on a condition variable:
    /// step mode runs a few hundred short jobs per token, each of which would otherwise pay
    /// for waking the workers and being woken by them.
    static let spinLimit = 2000

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

    /// Calls `task(index, worker)` once for each index in `0 ..< count`, on `workers` threads
    /// (worker 0 is the calling thread, and `worker` < `workers` selects per-thread scratch),
    /// and returns when all calls have returned.
    @usableFromInline
    func runTasks(_ count: Int, workers: Int, _ task: @escaping @Sendable (Int, Int) -> Void) {
        let workers = max(1, min(workers, count))
        if workers == 1 {
            for index in 0 ..< count { task(index, 0) }
            return
        }
        run(.closure(task), count: count, workers: workers)
    }

    /// Calls `loop(index, worker:)` once for each index in `0 ..< count`, as
    /// ``runTasks(_:workers:_:)`` does, without allocating: the workers read `loop` where it lies.
    @usableFromInline
    func run<Loop: ParallelLoop>(_ count: Int, workers: Int, _ loop: Loop) {
        let workers = max(1, min(workers, count))
        if workers == 1 {
            for index in 0 ..< count { loop(index, worker: 0) }
            return
        }
        withUnsafePointer(to: loop) { p in run(.loop(Loop.self, UnsafeRawPointer(p)), count: count, workers: workers) }
    }

    /// What the workers call: a closure, or a ``ParallelLoop`` by type and address.
    enum Job: @unchecked Sendable {
        case closure(@Sendable (Int, Int) -> Void)
        case loop(any ParallelLoop.Type, UnsafeRawPointer)

        @inline(__always)
        func callAsFunction(_ index: Int, _ worker: Int) {
            switch self {
            case let .closure(task): task(index, worker)
            case let .loop(type, address): type.invoke(address, index, worker)
            }
        }
    }

    private func run(_ task: Job, count: Int, workers: Int) {
        guard pthread_mutex_trylock(busy) == 0 else {
            // Another caller holds the pool: the same schedule through Dispatch (allocates).
            let counter = Counter()
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                while case let index = counter.value.wrappingAdd(1, ordering: .relaxed).oldValue, index < count {
                    task(index, worker)
                }
            }
            return
        }
        defer { pthread_mutex_unlock(busy) }
        pthread_mutex_lock(mutex)
        while threadCount < workers - 1 { spawnThread() }
        job = task
        taskCount = count
        claim.store(0, ordering: .relaxed)
        participants = workers
        nextIndex = 1
        pending = workers - 1
        remaining.store(workers - 1, ordering: .relaxed)
        generation &+= 1
        published.store(generation, ordering: .releasing)
        pthread_cond_broadcast(start)
        pthread_mutex_unlock(mutex)

        work(task, count: count, worker: 0)

        var spins = 0
        while remaining.load(ordering: .acquiring) > 0, spins < Self.spinLimit {
            spins += 1
            ssm_cpu_relax()
        }
        pthread_mutex_lock(mutex)
        while pending > 0 { pthread_cond_wait(done, mutex) }
        job = nil
        pthread_mutex_unlock(mutex)
    }

    private func work(_ task: Job, count: Int, worker: Int) {
        while case let index = claim.wrappingAdd(1, ordering: .relaxed).oldValue, index < count {
            task(index, worker)
        }
    }

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
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
            if generation == seen {
                // Spin briefly without the lock, so that a job that follows at once starts
                // without a wake-up; then sleep.
                pthread_mutex_unlock(mutex)
                var spins = 0
                while published.load(ordering: .acquiring) == seen, spins < Self.spinLimit {
                    spins += 1
                    ssm_cpu_relax()
                }
                pthread_mutex_lock(mutex)
                while generation == seen { pthread_cond_wait(start, mutex) }
            }
            seen = generation
            guard nextIndex < participants, let job else { continue }
            let worker = nextIndex
            nextIndex += 1
            let count = taskCount
            pthread_mutex_unlock(mutex)
            work(job, count: count, worker: worker)
            remaining.subtract(1, ordering: .releasing)
            pthread_mutex_lock(mutex)
            pending -= 1
            if pending == 0 { pthread_cond_signal(done) }
        }
    }
}


/// The body of a parallel loop, called once per task index by ``WorkerPool``: a value type whose
/// stored properties are what the loop reads (pointers, sizes), so that running it allocates
/// nothing. Its calls run concurrently; each must write only memory that no other index writes.
@usableFromInline
package protocol ParallelLoop {
    func callAsFunction(_ index: Int, worker: Int)
}

extension ParallelLoop {
    /// Calls the loop stored at `address` (a value of this type).
    @inlinable
    static func invoke(_ address: UnsafeRawPointer, _ index: Int, _ worker: Int) {
        address.assumingMemoryBound(to: Self.self).pointee(index, worker: worker)
    }
}

/// A ``ParallelLoop`` from a context value and a closure that captures nothing else. The
/// closure is made inside the (specialized) caller, so the loop's work runs specialized code;
/// a ``ParallelLoop`` of a generic type would be called through its unspecialized witness.
@usableFromInline
package struct ContextLoop<Context>: ParallelLoop {
    @usableFromInline let context: Context
    @usableFromInline let body: (Context, Int, Int) -> Void

    @inlinable
    package init(context: Context, body: @escaping (Context, Int, Int) -> Void) { (self.context, self.body) = (context, body) }

    @inlinable
    package func callAsFunction(_ index: Int, worker: Int) { body(context, index, worker) }
}

/// A pointer (or any value) carried into worker threads: the caller keeps the memory alive,
/// and the workers write disjoint parts of it.
@usableFromInline
package struct SendableBox<P>: @unchecked Sendable {
    @usableFromInline package let value: P
    @inlinable package init(_ value: P) { self.value = value }
}

extension WorkerPool {
    /// The number of processors online, at least 1.
    @usableFromInline
    package static func onlineProcessorCount() -> Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Calls `body(index, worker)` once for each index in `0 ..< count` on up to `threads`
    /// threads of SSMKit's worker pool (worker < threads selects per-thread scratch), returning
    /// when all calls have returned. For the training layers' parallel loops.
    package static func forEachInParallel(_ count: Int, threads: Int, _ body: @escaping @Sendable (Int, Int) -> Void) {
        shared.runTasks(count, workers: threads, body)
    }

    /// Runs `loop` for each index in `0 ..< count` on up to `threads` threads, allocating nothing.
    @inlinable
    package static func forEachInParallel<Loop: ParallelLoop>(_ count: Int, threads: Int, _ loop: Loop) {
        shared.run(count, workers: threads, loop)
    }

    /// Calls `body(context, index, worker)` for each index in `0 ..< count` on up to `threads`
    /// threads, allocating nothing when `body` captures nothing (its inputs come in `context`;
    /// a closure that captures values is allocated on every call).
    @inlinable
    package static func forEachInParallel<Context>(_ count: Int, threads: Int, _ context: Context,
                                                   _ body: @escaping (Context, Int, Int) -> Void) {
        shared.run(count, workers: threads, ContextLoop(context: context, body: body))
    }
}
