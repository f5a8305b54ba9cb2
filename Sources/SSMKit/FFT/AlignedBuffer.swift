import CSSMKitFFTW

/// A fixed-size buffer of `count` elements from `fftw_malloc`, so that FFTW's SIMD codelets
/// see the alignment its plans were made with. The one owner of raw FFT memory in SSMKit.
///
/// Sub-arrays handed to FFTW start at multiples of ``alignedStride(_:of:)`` elements, which keeps
/// every one of them on the same 64-byte alignment as the buffer itself (FFTW's new-array
/// execute functions require the alignment of the arrays the plan was made with).
@usableFromInline
final class AlignedBuffer<Element>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Element>
    @usableFromInline let count: Int

    /// Allocates `count` elements, zero-filled. `Element` must be a trivial type.
    @usableFromInline
    init(count: Int) {
        precondition(count >= 0, "AlignedBuffer: count \(count) < 0")
        let bytes = max(1, count) * MemoryLayout<Element>.stride
        guard let raw = fftw_malloc(bytes) else {
            fatalError("fftw_malloc(\(bytes)) failed: out of memory")
        }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        base = raw.bindMemory(to: Element.self, capacity: max(1, count))
        self.count = count
    }

    deinit { fftw_free(base) }

    /// Runs `body` with the buffer's pointer; the buffer stays alive for the whole call.
    @inlinable @inline(__always)
    func withPointer<R>(_ body: (UnsafeMutablePointer<Element>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(base) }
    }
}

/// The number of elements, at least `count`, that fills a whole number of 64-byte lines.
@inlinable
func alignedStride<Element>(_ count: Int, of: Element.Type) -> Int {
    let perLine = max(1, 64 / MemoryLayout<Element>.stride)
    return (count + perLine - 1) / perLine * perLine
}
