import SSMKit

/// How the optimizer treats a parameter (the official examples' `_optim` groups).
public enum ParameterGroup: String, Sendable, CaseIterable {
    /// The base learning rate and weight decay.
    case standard
    /// The SSM parameters (Δ, A, B, P; Mamba's `A_log` and `D`): their own learning rate and no
    /// weight decay, as the official S4 example and Mamba's `_no_weight_decay` do.
    case ssm
}

/// Named parameters, each flat in its official row-major shape, in state_dict order.
///
/// Parameters, their gradients and the optimizer's moments are all `ParameterSet`s of one
/// layout (same names, shapes and groups), so the optimizer is one loop over names and the
/// gradients are zeroed by one explicit call (``zero()``).
public struct ParameterSet<T: SafeTensorsScalar>: Sendable {
    public private(set) var names: [String] = []
    public private(set) var shapes: [String: [Int]] = [:]
    public private(set) var groups: [String: ParameterGroup] = [:]
    public private(set) var values: [String: [T]] = [:]

    public init() {}

    /// Appends a parameter. A name given twice or a count that does not match the shape is a
    /// programmer error.
    public mutating func add(_ name: String, shape: [Int], group: ParameterGroup = .standard, values v: [T]) {
        precondition(values[name] == nil, "ParameterSet: \(name) added twice")
        precondition(v.count == shape.reduce(1, *), "ParameterSet: \(name) has \(v.count) values for shape \(shape)")
        names.append(name)
        shapes[name] = shape
        groups[name] = group
        values[name] = v
    }

    /// The values of `name`; setting keeps the count (a programmer error otherwise).
    public subscript(_ name: String) -> [T] {
        get {
            guard let v = values[name] else { preconditionFailure("ParameterSet: no parameter \(name)") }
            return v
        }
        set {
            precondition(newValue.count == values[name]?.count, "ParameterSet: \(name) set with \(newValue.count) values")
            values[name] = newValue
        }
    }

    /// Adds `delta` into `name` element by element (backward passes accumulate).
    public mutating func accumulate(_ name: String, _ delta: [T]) {
        guard var v = values.removeValue(forKey: name) else { preconditionFailure("ParameterSet: no parameter \(name)") }
        precondition(v.count == delta.count, "ParameterSet: \(name) accumulates \(delta.count) into \(v.count)")
        for i in v.indices { v[i] += delta[i] }
        values[name] = v
    }

    /// A set of the same layout, all zero (gradients, optimizer moments).
    public func zeros() -> ParameterSet {
        var z = self
        for name in names { z.values[name] = [T](repeating: 0, count: values[name]!.count) }
        return z
    }

    /// Sets every value to zero, keeping the storage.
    public mutating func zero() {
        for name in names {
            var v = values.removeValue(forKey: name)!
            for i in v.indices { v[i] = 0 }
            values[name] = v
        }
    }

    /// Number of scalars.
    public var scalarCount: Int { names.reduce(0) { $0 + values[$1]!.count } }

    /// Whether `other` has the same names, shapes and groups.
    public func hasLayout(of other: ParameterSet) -> Bool {
        names == other.names && shapes == other.shapes && groups == other.groups
    }

    /// The subset whose names start with `prefix`, with the prefix removed.
    public func subset(_ prefix: String) -> [String: [T]] {
        var out: [String: [T]] = [:]
        for name in names where name.hasPrefix(prefix) { out[String(name.dropFirst(prefix.count))] = values[name] }
        return out
    }
}
