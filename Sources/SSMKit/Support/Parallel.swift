import Synchronization

/// A pointer that may cross into the worker closures of ``parallelRows(_:workers:claim:_:)``.
/// Each worker touches disjoint rows (or only reads), which is what makes this sound.
@usableFromInline
struct SharedPointer<T>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<T>
    @inlinable init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    @inlinable init(_ base: UnsafePointer<T>) { self.base = UnsafeMutablePointer(mutating: base) }
}

/// Runs `body(row, worker)` for every row in `0 ..< count` on `workers` threads.
///
/// Rows are claimed one at a time from `claim` (dynamic scheduling, so a slow core does not hold
/// up the others); `worker` in `0 ..< workers` selects the caller's scratch. With one worker, or
/// one row, everything runs on the calling thread. Allocation-free: the threads come from
/// ``WorkerPool``, the counter lives in the caller's long-lived object and the closure is not
/// escaping.
@inlinable
func parallelRows(_ count: Int, workers: Int, claim: borrowing Atomic<Int>,
                  _ body: (_ row: Int, _ worker: Int) -> Void) {
    let workers = max(1, min(workers, count))
    if workers == 1 {
        for row in 0 ..< count { body(row, 0) }
        return
    }
    claim.store(0, ordering: .relaxed)
    runWorkers(workers) { worker in
        while true {
            let row = claim.wrappingAdd(1, ordering: .relaxed).oldValue
            if row >= count { break }
            body(row, worker)
        }
    }
}

/// `WorkerPool.shared.run`, behind a non-generic, non-inlinable entry point.
@usableFromInline @inline(never)
func runWorkers(_ workers: Int, _ body: (Int) -> Void) {
    WorkerPool.shared.run(workers: workers, body)
}
