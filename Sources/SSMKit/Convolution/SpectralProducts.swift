import ComplexModule

// Pointwise products of half spectra: the only arithmetic the FFT convolution does between
// transforms. They run over interleaved (re, im) scalars so that the compiler vectorizes them.

/// `out[i] = a[i] · b[i]` for i in 0 ..< count. `out` may alias `a`.
@inlinable @inline(__always)
func spectralMultiply<T: FFTScalar>(_ a: UnsafePointer<Complex<T>>, _ b: UnsafePointer<Complex<T>>,
                                    into out: UnsafeMutablePointer<Complex<T>>, count: Int) {
    let x = UnsafeRawPointer(a).assumingMemoryBound(to: T.self)
    let y = UnsafeRawPointer(b).assumingMemoryBound(to: T.self)
    let z = UnsafeMutableRawPointer(out).assumingMemoryBound(to: T.self)
    for i in 0 ..< count {
        let (xr, xi, yr, yi) = (x[2 * i], x[2 * i + 1], y[2 * i], y[2 * i + 1])
        z[2 * i] = xr * yr - xi * yi
        z[2 * i + 1] = xr * yi + xi * yr
    }
}

/// `out[i] (+)= conj(a[i]) · b[i]`: the spectrum of a cross-correlation. Overwrites `out` when
/// `accumulate` is false.
@inlinable @inline(__always)
func spectralMultiplyConjugate<T: FFTScalar>(_ a: UnsafePointer<Complex<T>>, _ b: UnsafePointer<Complex<T>>,
                                             into out: UnsafeMutablePointer<Complex<T>>, count: Int,
                                             accumulate: Bool) {
    let x = UnsafeRawPointer(a).assumingMemoryBound(to: T.self)
    let y = UnsafeRawPointer(b).assumingMemoryBound(to: T.self)
    let z = UnsafeMutableRawPointer(out).assumingMemoryBound(to: T.self)
    if accumulate {
        for i in 0 ..< count {
            let (xr, xi, yr, yi) = (x[2 * i], x[2 * i + 1], y[2 * i], y[2 * i + 1])
            z[2 * i] += xr * yr + xi * yi
            z[2 * i + 1] += xr * yi - xi * yr
        }
    } else {
        for i in 0 ..< count {
            let (xr, xi, yr, yi) = (x[2 * i], x[2 * i + 1], y[2 * i], y[2 * i + 1])
            z[2 * i] = xr * yr + xi * yi
            z[2 * i + 1] = xr * yi - xi * yr
        }
    }
}
