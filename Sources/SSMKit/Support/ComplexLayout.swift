// Complex values and their interleaved (re, im) layout, PyTorch's `view_as_real`: the one
// conversion in each direction that checkpoints, fixtures and `ssm eval` share.

/// Complex values from interleaved (re, im) pairs; `v` has an even count (a programmer error otherwise).
package func complexArray<T: Real>(_ v: [T]) -> [Complex<T>] {
    precondition(v.count % 2 == 0, "complexArray: an odd count \(v.count) of interleaved values")
    return (0 ..< v.count / 2).map { Complex(v[2 * $0], v[2 * $0 + 1]) }
}

/// Interleaved (re, im) pairs from complex values.
package func interleaved<T: Real>(_ c: [Complex<T>]) -> [T] {
    c.flatMap { [$0.real, $0.imaginary] }
}
