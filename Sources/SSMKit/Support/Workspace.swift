/// Zeroed buffers that live as long as the workspace: scratch and gradient accumulators that
/// worker threads write through plain pointers (disjoint rows each), freed together in deinit.
final class Workspace<T: FFTScalar>: @unchecked Sendable {
    private var buffers: [UnsafeMutableBufferPointer<T>] = []

    /// `count` zeros (at least one element, so the pointer is never dangling).
    func zeros(_ count: Int) -> UnsafeMutablePointer<T> {
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: Swift.max(1, count))
        buffer.initialize(repeating: 0)
        buffers.append(buffer)
        return buffer.baseAddress!
    }

    deinit { for b in buffers { b.deallocate() } }
}

/// The first `count` values at `p` as an array.
func array<T>(_ p: UnsafeMutablePointer<T>, _ count: Int) -> [T] { Array(UnsafeBufferPointer(start: p, count: count)) }
