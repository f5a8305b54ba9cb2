import Dispatch
import Synchronization
import Testing
@testable import SSMKit

@Suite("worker pool")
struct WorkerPoolTests {
    @Test("every index runs exactly once per job, over many jobs and worker counts")
    func indices() {
        for workers in [1, 2, 3, 5] {
            for _ in 0 ..< 200 {
                let hits = Locked([Int](repeating: 0, count: workers))
                WorkerPool.shared.runTasks(workers, workers: workers) { index, _ in hits.withLock { $0[index] += 1 } }
                #expect(hits.withLock { $0 } == [Int](repeating: 1, count: workers), "workers = \(workers)")
            }
        }
    }

    @Test("concurrent callers all complete (the busy pool falls back to Dispatch)")
    func concurrentCallers() {
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0 ..< 50 {
                WorkerPool.shared.runTasks(2, workers: 2) { _, _ in total.wrappingAdd(1, ordering: .relaxed) }
            }
        }
        #expect(total.load(ordering: .relaxed) == 8 * 50 * 2)
    }
}
