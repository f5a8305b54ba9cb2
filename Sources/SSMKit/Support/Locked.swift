#if canImport(Glibc)
import Glibc
#endif

/// A value behind a POSIX mutex: ``withLock(_:)`` runs a closure with the value, one thread at
/// a time.
///
/// SSMKit locks with `pthread_mutex_t` rather than the standard library's `Mutex`, whose Linux
/// implementation waits on the futex system call directly: ThreadSanitizer models pthread
/// mutexes, so a run under it sees the ordering this lock provides and reports only real races.
package final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// `body`'s result, run with the value while holding the lock.
    @inline(__always)
    package func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
