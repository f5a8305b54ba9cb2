import SSMKit

/// Objects made once per key (an FFT plan for one (B, L), the buffers of one pass) and handed
/// out again: ``take(_:make:)`` returns an object of that key that nobody else holds (by
/// `isKnownUniquelyReferenced`, so an object a caller still keeps is never handed out twice),
/// making one only when none is free. In steady state it allocates nothing. Thread-safe: two
/// concurrent passes get two objects.
package final class ReusePool<Key: Hashable, Value: AnyObject>: @unchecked Sendable {
    private let entries: Locked<[(key: Key, value: Value)]>
    /// Free objects kept at most; more are dropped when a new one is made.
    private let capacity: Int

    package init(capacity: Int = 8) {
        self.capacity = capacity
        var list: [(key: Key, value: Value)] = []
        list.reserveCapacity(capacity + 1)
        entries = Locked(list)
    }

    /// A free object for `key`, or a new one from `make` (kept for later calls).
    package func take<E: Error>(_ key: Key, make: () throws(E) -> Value) throws(E) -> Value {
        let free = entries.withLock { entries -> Value? in
            for i in entries.indices where entries[i].key == key && isKnownUniquelyReferenced(&entries[i].value) {
                return entries[i].value
            }
            return nil
        }
        if let free { return free }
        let value = try make()
        entries.withLock { entries in
            if entries.count >= capacity, let free = entries.indices.first(where: { isKnownUniquelyReferenced(&entries[$0].value) }) {
                entries.remove(at: free)
            }
            entries.append((key, value))
        }
        return value
    }
}

/// A (batch, length) pair: the key of per-shape objects.
package struct PassShape: Hashable, Sendable {
    package let batch: Int, length: Int
    package init(batch: Int, length: Int) { (self.batch, self.length) = (batch, length) }
}
