import SSMKit

/// How a declared parameter gets its first values. Every draw comes from the generator of the
/// block that declares it, in declaration order, so a model's initial parameters depend only
/// on its seed.
public enum ParameterInitialization: Sendable {
    /// Every value the same.
    case constant(Double)
    /// Uniform in [−bound, bound), as PyTorch's default for `nn.Linear` and `nn.Conv1d`
    /// (bound 1/√fan_in).
    case uniform(bound: Double)
    /// Normal with mean 0.
    case normal(deviation: Double)
    /// Values the declaring block computes itself (HiPPO forms, log-uniform Δ, …): called with
    /// the generator and the parameter's scalar count.
    case custom(@Sendable (inout SplitMix64, Int) throws(SSMError) -> [Double])

    /// Mamba's time-step bias: Δ drawn log-uniform in [`minimum`, `maximum`), raised to at
    /// least `floor`, stored as softplus⁻¹(Δ) = Δ + log(1 − e^{−Δ}) (official `dt_proj.bias`
    /// of Mamba, `dt_bias` of Mamba-2).
    public static func inverseSoftplusTimeStep(minimum: Double = 0.001, maximum: Double = 0.1, floor: Double = 1e-4) -> ParameterInitialization {
        .custom { rng, count in
            (0 ..< count).map { _ in
                let dt = Swift.max(floor, Double.exp(Double.random(in: Double.log(minimum) ..< Double.log(maximum), using: &rng)))
                return dt + Double.log(-Double.expMinusOne(-dt))
            }
        }
    }

    /// The initial values of `count` scalars.
    public func values(count: Int, rng: inout SplitMix64) throws(SSMError) -> [Double] {
        switch self {
        case let .constant(v): return [Double](repeating: v, count: count)
        case let .uniform(bound): return (0 ..< count).map { _ in Double.random(in: -bound ..< bound, using: &rng) }
        case let .normal(deviation):
            // Pairs from one Box–Muller draw: the first of each pair is used.
            return (0 ..< count).map { _ in rng.nextStandardNormalPair().0 * deviation }
        case let .custom(make):
            let v = try make(&rng, count)
            precondition(v.count == count, "ParameterInitialization.custom: \(v.count) values for \(count)")
            return v
        }
    }
}

/// One parameter as the block that owns it declares it: its official name (relative to the
/// block), row-major shape, optimizer group and initialization. A block's declarations are
/// the single source of its parameters: the model's flat layout, its initial values, its
/// checkpoint names and its optimizer groups all come from them.
public struct ParameterDeclaration: Sendable {
    public var name: String
    public var shape: [Int]
    public var group: ParameterGroup
    public var initialization: ParameterInitialization
    /// An output projection into the residual stream: a model whose backbone rescales them
    /// (Mamba's `rescale_prenorm_residual`) divides its initial values by √layers.
    public var feedsResidual: Bool

    public init(_ name: String, shape: [Int], group: ParameterGroup = .standard, initialization: ParameterInitialization,
                feedsResidual: Bool = false) {
        (self.name, self.shape, self.group, self.initialization, self.feedsResidual) = (name, shape, group, initialization, feedsResidual)
    }

    /// The scalar count of the shape.
    public var count: Int { shape.reduce(1, *) }
}

/// Where each of a block's declared parameters sits inside the block's slice of the flat
/// buffer: offsets in declaration order, found by name once (when the block is made).
public struct ParameterLayout: Sendable {
    public let declarations: [ParameterDeclaration]
    /// The range of each declaration, relative to the block's first scalar.
    public let ranges: [Range<Int>]
    /// The block's scalar count.
    public let count: Int

    public init(_ declarations: [ParameterDeclaration]) {
        var ranges: [Range<Int>] = [], offset = 0
        for d in declarations {
            ranges.append(offset ..< offset + d.count)
            offset += d.count
        }
        (self.declarations, self.ranges, self.count) = (declarations, ranges, offset)
    }

    /// The index of `name`, or nil when the block has no such parameter.
    public func index(of name: String) -> Int? { declarations.firstIndex { $0.name == name } }
}

/// A block's parameters in place: its slice of the model's flat parameter buffer, read by
/// declaration index. Valid while the buffer it was made from is.
public struct ParameterView<T>: @unchecked Sendable {
    public let base: UnsafePointer<T>
    public let layout: ParameterLayout

    public init(base: UnsafePointer<T>, layout: ParameterLayout) { (self.base, self.layout) = (base, layout) }

    /// The values of declaration `index`.
    @inlinable
    public subscript(_ index: Int) -> UnsafeBufferPointer<T> {
        let r = layout.ranges[index]
        return UnsafeBufferPointer(start: base + r.lowerBound, count: r.count)
    }

    /// A copy of declaration `index`'s values (for engine calls that take arrays).
    public func array(_ index: Int) -> [T] { Array(self[index]) }
}

/// A block's gradients in place, the same layout as its ``ParameterView``: backward passes add
/// into it (+=).
public struct GradientView<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    public let layout: ParameterLayout

    public init(base: UnsafeMutablePointer<T>, layout: ParameterLayout) { (self.base, self.layout) = (base, layout) }

    @inlinable
    public subscript(_ index: Int) -> UnsafeMutableBufferPointer<T> {
        let r = layout.ranges[index]
        return UnsafeMutableBufferPointer(start: base + r.lowerBound, count: r.count)
    }
}

extension GradientView where T: FloatingPoint {
    /// Adds `delta` into declaration `index`.
    public func accumulate(_ index: Int, _ delta: some Collection<T>) {
        let g = self[index]
        precondition(delta.count == g.count, "GradientView: \(layout.declarations[index].name) accumulates \(delta.count) into \(g.count)")
        for (i, v) in zip(g.indices, delta) { g[i] += v }
    }
}

extension ParameterView where T: FFTScalar {
    /// Copies declaration `index` into `values` (same count), without allocating.
    public func copy(_ index: Int, into values: inout [T]) {
        let v = self[index]
        for i in values.indices { values[i] = v[i] }
    }

    /// Copies declaration `index`, stored as interleaved (re, im) pairs, into `values`.
    public func copy(_ index: Int, into values: inout [Complex<T>]) {
        let v = self[index]
        for i in values.indices { values[i] = Complex(v[2 * i], v[2 * i + 1]) }
    }
}

extension GradientView where T: FFTScalar {
    /// Adds complex `delta` into declaration `index`, stored as interleaved (re, im) pairs.
    public func accumulate(_ index: Int, _ delta: [Complex<T>]) {
        let g = self[index]
        precondition(2 * delta.count == g.count, "GradientView: \(layout.declarations[index].name) accumulates \(delta.count) complex into \(g.count)")
        for (i, v) in delta.enumerated() {
            g[2 * i] += v.real
            g[2 * i + 1] += v.imaginary
        }
    }
}
