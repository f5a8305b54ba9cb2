import SSMKit

/// How the optimizer treats a parameter (the official examples' `_optim` groups).
public enum ParameterGroup: String, Sendable, CaseIterable {
    /// The base learning rate and weight decay.
    case standard
    /// The SSM parameters (Δ, A, B, P; Mamba's `A_log` and `D`): their own learning rate and no
    /// weight decay, as the official S4 example and Mamba's `_no_weight_decay` do.
    case ssm
}

/// Named parameters, each flat in its official row-major shape, in state_dict order, stored one
/// after the other in one flat buffer (``storage``).
///
/// Parameters, their gradients and the optimizer's moments are all `ParameterSet`s of one
/// layout (same names, shapes, groups and offsets), so the optimizer is one pass over the flat
/// buffers, the gradients are zeroed by one explicit call (``zero()``), and the whole set is
/// one contiguous block for a future all-reduce. ``withUnsafeMutableBufferPointer(_:_:)``
/// gives a typed view of one parameter without a copy.
public struct ParameterSet<T: SSMScalar>: Sendable {
    public private(set) var names: [String] = []
    public private(set) var shapes: [String: [Int]] = [:]
    public private(set) var groups: [String: ParameterGroup] = [:]
    /// Where each parameter's values sit in ``storage``.
    public private(set) var ranges: [String: Range<Int>] = [:]
    /// Every value, parameter after parameter in ``names`` order.
    public internal(set) var storage: [T] = []

    public init() {}

    /// Appends a parameter. A name given twice or a count that does not match the shape is a
    /// programmer error.
    public mutating func add(_ name: String, shape: [Int], group: ParameterGroup = .standard, values v: [T]) {
        precondition(ranges[name] == nil, "ParameterSet: \(name) added twice")
        precondition(v.count == shape.reduce(1, *), "ParameterSet: \(name) has \(v.count) values for shape \(shape)")
        names.append(name)
        shapes[name] = shape
        groups[name] = group
        ranges[name] = storage.count ..< storage.count + v.count
        storage.append(contentsOf: v)
    }

    private func range(_ name: String) -> Range<Int> {
        guard let r = ranges[name] else { preconditionFailure("ParameterSet: no parameter \(name)") }
        return r
    }

    /// The values of `name` (a copy); setting keeps the count (a programmer error otherwise).
    public subscript(_ name: String) -> [T] {
        get { Array(storage[range(name)]) }
        set {
            let r = range(name)
            precondition(newValue.count == r.count, "ParameterSet: \(name) set with \(newValue.count) values")
            storage.replaceSubrange(r, with: newValue)
        }
    }

    /// Calls `body` with the values of `name` in place.
    public mutating func withUnsafeMutableBufferPointer<R>(_ name: String, _ body: (UnsafeMutableBufferPointer<T>) throws -> R) rethrows -> R {
        let r = range(name)
        return try storage.withUnsafeMutableBufferPointer { try body(UnsafeMutableBufferPointer(rebasing: $0[r])) }
    }

    /// Adds `delta` into `name` element by element (backward passes accumulate).
    public mutating func accumulate(_ name: String, _ delta: [T]) {
        let r = range(name)
        precondition(r.count == delta.count, "ParameterSet: \(name) accumulates \(delta.count) into \(r.count)")
        storage.withUnsafeMutableBufferPointer { s in
            for i in 0 ..< delta.count { s[r.lowerBound + i] += delta[i] }
        }
    }

    /// A set of the same layout, all zero (gradients, optimizer moments).
    public func zeros() -> ParameterSet {
        var z = self
        z.storage = [T](repeating: 0, count: storage.count)
        return z
    }

    /// Sets every value to zero, keeping the storage: one pass over the flat buffer.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public mutating func zero() {
        storage.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// Number of scalars.
    public var scalarCount: Int { storage.count }

    /// Whether `other` has the same names, shapes and groups (and so the same offsets).
    public func hasLayout(of other: ParameterSet) -> Bool {
        names == other.names && shapes == other.shapes && groups == other.groups
    }

    /// The subset whose names start with `prefix`, with the prefix removed.
    public func subset(_ prefix: String) -> [String: [T]] {
        var out: [String: [T]] = [:]
        for name in names where name.hasPrefix(prefix) { out[String(name.dropFirst(prefix.count))] = self[name] }
        return out
    }
}
