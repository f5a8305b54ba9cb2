import CSSMKitKernels

/// One (batch, channel) row of the selective scan as the C loops of CSSMKitKernels see it: the
/// row's u, delta and z, channel d's A, D and delta bias, and where B_t and C_t are
/// (`b + t·bStep`: step N for input-dependent B stored (L, N), step 0 for a time-invariant one).
public struct SelectiveRow<T> {
    public var length: Int
    public var state: Int
    public var u: UnsafePointer<T>
    public var delta: UnsafePointer<T>
    public var a: UnsafePointer<T>
    public var b: UnsafePointer<T>
    public var bStep: Int
    public var c: UnsafePointer<T>
    public var cStep: Int
    public var z: UnsafePointer<T>?
    public var dSkip: T
    public var deltaBias: T
    public var softplus: Bool
    public var initialState: UnsafePointer<T>?
}

/// Where the backward of one row writes (du, ddelta, dz, dx0) and accumulates (dA, dB, dC,
/// dD, d delta_bias); dB and dC use the row's bStep and cStep.
public struct SelectiveRowGradients<T> {
    public var u: UnsafeMutablePointer<T>
    public var delta: UnsafeMutablePointer<T>
    public var z: UnsafeMutablePointer<T>?
    public var initialState: UnsafeMutablePointer<T>?
    public var a: UnsafeMutablePointer<T>
    public var b: UnsafeMutablePointer<T>
    public var c: UnsafeMutablePointer<T>
    public var d: UnsafeMutablePointer<T>
    public var deltaBias: UnsafeMutablePointer<T>
}

/// The rows of one decoding step (``SelectiveStateUpdate``) as the C loop sees them: u, delta
/// and z (B, D); A (D, N); batch b's group g of B and C at `b + b·bcStride + g·N`; D and
/// delta_bias (D) or nil; the state x (B, D, N), advanced in place, and out (B, D).
public struct SelectiveStepRows<T>: @unchecked Sendable {
    public var channels: Int
    public var state: Int
    public var groups: Int
    public var u: UnsafePointer<T>
    public var delta: UnsafePointer<T>
    public var z: UnsafePointer<T>?
    public var a: UnsafePointer<T>
    public var b: UnsafePointer<T>
    public var c: UnsafePointer<T>
    public var bcStride: Int
    public var dSkip: UnsafePointer<T>?
    public var deltaBias: UnsafePointer<T>?
    public var softplus: Bool
    public var x: UnsafeMutablePointer<T>
    public var out: UnsafeMutablePointer<T>
}

/// A scalar whose selective-scan rows run in C: `Float` or `Double`.
public protocol SelectiveScanScalar: FFTScalar {
    /// One row forward; false when the row's u, delta or z hold a non-finite value.
    static func selectiveScanForward(_ row: SelectiveRow<Self>, out: UnsafeMutablePointer<Self>,
                                     lastState: UnsafeMutablePointer<Self>?, work: UnsafeMutablePointer<Self>) -> Bool
    /// One row backward; false when the row's u, delta, z or dOut hold a non-finite value.
    static func selectiveScanBackward(_ row: SelectiveRow<Self>, dOut: UnsafePointer<Self>,
                                      _ gradients: SelectiveRowGradients<Self>, chunk: Int, work: UnsafeMutablePointer<Self>) -> Bool
    /// Rows `rows` of one decoding step; false when their u, delta or z hold a non-finite value.
    static func selectiveScanStep(_ step: SelectiveStepRows<Self>, rows: Range<Int>) -> Bool
    /// The benchmark bound's loop: the row's exponentials alone.
    static func exponentialsOnly(dt: UnsafePointer<Self>, a: UnsafePointer<Self>, length: Int, state: Int) -> Self
}

extension Float: SelectiveScanScalar {}
extension Double: SelectiveScanScalar {}

/// Scalars of scratch one row needs: forward 3·L; backward (from CSSMKitKernels) for a chunk length.
func selectiveForwardWork(length: Int) -> Int { 3 * length }
func selectiveBackwardWork(length: Int, state: Int, chunk: Int) -> Int { ssm_scan_backward_work(length, state, chunk) }

// The two conformances differ only in the C names they call.
extension Float {
    @inlinable
    static func cRow(_ row: SelectiveRow<Float>) -> ssm_scan_row_f32 {
        ssm_scan_row_f32(length: row.length, state: row.state, u: row.u, delta: row.delta, a: row.a,
                         b: row.b, b_step: row.bStep, c: row.c, c_step: row.cStep, z: row.z, d_skip: row.dSkip,
                         delta_bias: row.deltaBias, softplus: row.softplus ? 1 : 0, x0: row.initialState)
    }
    @inlinable
    public static func selectiveScanForward(_ row: SelectiveRow<Float>, out: UnsafeMutablePointer<Float>,
                                            lastState: UnsafeMutablePointer<Float>?, work: UnsafeMutablePointer<Float>) -> Bool {
        var r = cRow(row)
        return ssm_scan_forward_f32(&r, out, lastState, work) == 0
    }
    @inlinable
    public static func selectiveScanBackward(_ row: SelectiveRow<Float>, dOut: UnsafePointer<Float>,
                                             _ g: SelectiveRowGradients<Float>, chunk: Int, work: UnsafeMutablePointer<Float>) -> Bool {
        var r = cRow(row)
        return ssm_scan_backward_f32(&r, dOut, g.u, g.delta, g.z, g.initialState, g.a, g.b, g.c, g.d, g.deltaBias, chunk, work) == 0
    }
    @inlinable
    public static func selectiveScanStep(_ s: SelectiveStepRows<Float>, rows: Range<Int>) -> Bool {
        var step = ssm_step_rows_f32(channels: s.channels, state: s.state, groups: s.groups, u: s.u, delta: s.delta, z: s.z, a: s.a,
                                        b: s.b, c: s.c, bc_stride: s.bcStride, d_skip: s.dSkip, delta_bias: s.deltaBias,
                                        softplus: s.softplus ? 1 : 0, x: s.x, out: s.out)
        return ssm_scan_step_f32(&step, rows.lowerBound, rows.upperBound) == 0
    }
    @inlinable
    public static func vectorExp(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int) {
        ssm_exp_f32(x, out, count)
    }
    @inlinable
    public static func exponentialsOnly(dt: UnsafePointer<Float>, a: UnsafePointer<Float>, length: Int, state: Int) -> Float {
        ssm_exponentials_only_f32(dt, a, length, state)
    }
}

extension Double {
    @inlinable
    static func cRow(_ row: SelectiveRow<Double>) -> ssm_scan_row_f64 {
        ssm_scan_row_f64(length: row.length, state: row.state, u: row.u, delta: row.delta, a: row.a,
                         b: row.b, b_step: row.bStep, c: row.c, c_step: row.cStep, z: row.z, d_skip: row.dSkip,
                         delta_bias: row.deltaBias, softplus: row.softplus ? 1 : 0, x0: row.initialState)
    }
    @inlinable
    public static func selectiveScanForward(_ row: SelectiveRow<Double>, out: UnsafeMutablePointer<Double>,
                                            lastState: UnsafeMutablePointer<Double>?, work: UnsafeMutablePointer<Double>) -> Bool {
        var r = cRow(row)
        return ssm_scan_forward_f64(&r, out, lastState, work) == 0
    }
    @inlinable
    public static func selectiveScanBackward(_ row: SelectiveRow<Double>, dOut: UnsafePointer<Double>,
                                             _ g: SelectiveRowGradients<Double>, chunk: Int, work: UnsafeMutablePointer<Double>) -> Bool {
        var r = cRow(row)
        return ssm_scan_backward_f64(&r, dOut, g.u, g.delta, g.z, g.initialState, g.a, g.b, g.c, g.d, g.deltaBias, chunk, work) == 0
    }
    @inlinable
    public static func selectiveScanStep(_ s: SelectiveStepRows<Double>, rows: Range<Int>) -> Bool {
        var step = ssm_step_rows_f64(channels: s.channels, state: s.state, groups: s.groups, u: s.u, delta: s.delta, z: s.z, a: s.a,
                                        b: s.b, c: s.c, bc_stride: s.bcStride, d_skip: s.dSkip, delta_bias: s.deltaBias,
                                        softplus: s.softplus ? 1 : 0, x: s.x, out: s.out)
        return ssm_scan_step_f64(&step, rows.lowerBound, rows.upperBound) == 0
    }
    @inlinable
    public static func vectorExp(_ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, _ count: Int) {
        ssm_exp_f64(x, out, count)
    }
    @inlinable
    public static func exponentialsOnly(dt: UnsafePointer<Double>, a: UnsafePointer<Double>, length: Int, state: Int) -> Double {
        ssm_exponentials_only_f64(dt, a, length, state)
    }
}
