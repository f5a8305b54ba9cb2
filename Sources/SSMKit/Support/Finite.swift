import ComplexModule

// The finiteness checks of the array entry points: the convolution, the kernels and the scans
// refuse NaN and infinity in their inputs, and their forward passes an output that overflowed
// the precision, with an ``SSMError`` naming the argument. The pointer entry points leave the
// check to their caller.

/// Whether the `count` values at `p` are all finite: one branch-free pass (it vectorizes).
@inlinable
package func allFinite<T: FFTScalar>(_ p: UnsafePointer<T>, _ count: Int) -> Bool {
    var bad: UInt8 = 0
    for i in 0 ..< count { bad |= p[i].isFinite ? 0 : 1 }
    return bad == 0
}

/// Whether every value of `values` is finite.
@inlinable
package func allFinite<T: FFTScalar>(_ values: [T]) -> Bool {
    values.withUnsafeBufferPointer { $0.isEmpty || allFinite($0.baseAddress!, $0.count) }
}

/// Throws unless `values` holds `count` finite numbers. One branch-free pass in the common
/// case; the offending index is looked up only on failure.
@inlinable
func checkValues<T: FFTScalar>(_ values: [T], _ name: String, _ count: Int,
                               _ expected: @autoclosure () -> String, finite: Bool = true) throws(SSMError) {
    if values.count != count { throw SSMError.shape(argument: name, expected: expected(), actual: [values.count]) }
    if finite { try checkFinite(values, name) }
}

/// Throws unless every value of `values` is finite, naming `name` and the first bad element.
@inlinable
func checkFinite<T: FFTScalar>(_ values: [T], _ name: String) throws(SSMError) {
    if !allFinite(values), let i = values.firstIndex(where: { !$0.isFinite }) {
        throw SSMError.value(argument: name, expected: "finite values (element \(i) is \(values[i]))")
    }
}

/// Throws unless both parts of every value of `values` are finite.
///
/// The loop reads through a buffer pointer: called from unspecialized generic code (an
/// `@inlinable` entry point specialized in a client module calls this one generically), an
/// Array's element accessor is a coroutine whose frame is allocated on the heap, once per element.
@inlinable
func checkFinite<T: FFTScalar>(_ values: [Complex<T>], _ name: String) throws(SSMError) {
    let bad = values.withUnsafeBufferPointer { v -> Int? in
        for i in 0 ..< v.count where !(v[i].real.isFinite && v[i].imaginary.isFinite) { return i }
        return nil
    }
    if let i = bad { throw SSMError.value(argument: name, expected: "finite values (element \(i) is \(values[i]))") }
}

/// The product of `extents` (positive sizes), or nil when it overflows `Int`: how a shape checks
/// that its tensors' element counts exist before anything is allocated or indexed.
package func elementCount(_ extents: [Int]) -> Int? {
    var product = 1
    for e in extents {
        let (p, overflow) = product.multipliedReportingOverflow(by: e)
        if overflow { return nil }
        product = p
    }
    return product
}
