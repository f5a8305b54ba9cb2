/// A dense, contiguous, row-major tensor: the exchange type of `ssm eval` and of checkpoints.
/// The engine's hot paths take flat arrays with documented shapes instead.
public struct Tensor<Scalar>: Sendable where Scalar: Sendable {
    /// Extent of each axis, outermost first. A scalar has shape `[]`.
    public var shape: [Int]
    /// `shape.reduce(1, *)` elements in row-major order.
    public var scalars: [Scalar]

    /// - Precondition: `scalars.count` equals the product of `shape`.
    public init(shape: [Int], scalars: [Scalar]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == scalars.count,
                     "Tensor: shape \(shape) does not hold \(scalars.count) scalars")
        self.shape = shape
        self.scalars = scalars
    }

    public var count: Int { scalars.count }
}

extension Tensor: Equatable where Scalar: Equatable {}

extension Tensor where Scalar: Numeric {
    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, scalars: Array(repeating: 0, count: shape.reduce(1, *)))
    }
}

extension Tensor where Scalar: FloatingPoint {
    /// Throws when any element is NaN or infinite; `name` is used in the message.
    public func requireFinite(_ name: String) throws(SSMError) {
        if let i = scalars.firstIndex(where: { !$0.isFinite }) {
            throw SSMError.value(argument: name, expected: "finite values (element \(i) is \(scalars[i]))")
        }
    }
}
