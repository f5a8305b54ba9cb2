/// Calls `body` with the base address of each array (nil for an absent or empty one), all
/// valid for the duration of the call: the engine's way to hand several optional inputs to
/// worker threads without copying them.
func withBaseAddresses<T, R>(_ arrays: [[T]?], _ body: ([UnsafePointer<T>?]) throws -> R) rethrows -> R {
    func pin(_ index: Int, _ pinned: [UnsafePointer<T>?]) throws -> R {
        guard index < arrays.count else { return try body(pinned) }
        guard let array = arrays[index] else { return try pin(index + 1, pinned + [nil]) }
        return try array.withUnsafeBufferPointer { try pin(index + 1, pinned + [$0.baseAddress]) }
    }
    return try pin(0, [])
}
