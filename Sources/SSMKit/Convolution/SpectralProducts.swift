import CSSMKitKernels
import ComplexModule

// Pointwise products of half spectra: the only arithmetic the FFT convolution does between
// transforms. The loops live in the C target CSSMKitKernels, which is compiled with AVX2 and AVX-512
// clones selected at load time: on this project's machines the AVX-512 clone runs these
// products about 2× faster than the SSE2 code Swift emits for the baseline x86-64 target, and
// the products are the largest cost of the convolution after FFTW itself. A loop in Swift
// would be the same arithmetic (see `spectralMultiplyReference` in the tests).

/// `out[i] = a[i] · b[i]` for i in 0 ..< count; `out` overlaps neither `a` nor `b`.
@inlinable @inline(__always)
func spectralMultiply<T: FFTScalar>(_ a: UnsafePointer<Complex<T>>, _ b: UnsafePointer<Complex<T>>,
                                    into out: UnsafeMutablePointer<Complex<T>>, count: Int) {
    T.spectralMultiply(UnsafeRawPointer(a), UnsafeRawPointer(b), UnsafeMutableRawPointer(out), count)
}

/// `a[i] *= b[i]` for i in 0 ..< count, in place.
@inlinable @inline(__always)
func spectralMultiply<T: FFTScalar>(_ a: UnsafeMutablePointer<Complex<T>>, by b: UnsafePointer<Complex<T>>, count: Int) {
    T.spectralMultiplyInPlace(UnsafeMutableRawPointer(a), UnsafeRawPointer(b), count)
}

/// `out[i] (+)= conj(a[i]) · b[i]`: the spectrum of a cross-correlation. Overwrites `out` when
/// `accumulate` is false; `out` overlaps neither `a` nor `b`.
@inlinable @inline(__always)
func spectralMultiplyConjugate<T: FFTScalar>(_ a: UnsafePointer<Complex<T>>, _ b: UnsafePointer<Complex<T>>,
                                             into out: UnsafeMutablePointer<Complex<T>>, count: Int,
                                             accumulate: Bool) {
    T.spectralMultiplyConjugate(UnsafeRawPointer(a), UnsafeRawPointer(b), UnsafeMutableRawPointer(out),
                                count, accumulate)
}

// Real rows on either side of the transforms (the copy-in product of backward, the gradients'
// accumulation), in C for the same reason; each clone rounds as the scalar loop does.

/// `out[i] = a[i] · b[i]`; `out` overlaps neither.
@usableFromInline
func rowMultiply<T: FFTScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int) {
    if T.self == Float.self {
        ssm_row_multiply_f32(real(a), real(b), real(out), count)
    } else {
        ssm_row_multiply_f64(real(a), real(b), real(out), count)
    }
}

/// `out[i] += a[i]`, or `out[i] += a[i] · scale` (rounded before the sum); `out` does not overlap `a`.
@usableFromInline
func rowAdd<T: FFTScalar>(_ a: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, scale: T? = nil, count: Int) {
    switch (T.self == Float.self, scale) {
    case (true, nil): ssm_row_add_f32(real(out), real(a), count)
    case (false, nil): ssm_row_add_f64(real(out), real(a), count)
    case let (true, scale?): ssm_row_add_scaled_f32(real(out), real(a), unsafeBitCast(scale, to: Float.self), count)
    case let (false, scale?): ssm_row_add_scaled_f64(real(out), real(a), unsafeBitCast(scale, to: Double.self), count)
    }
}

@inline(__always) private func real<T, U>(_ p: UnsafePointer<T>) -> UnsafePointer<U> { UnsafeRawPointer(p).assumingMemoryBound(to: U.self) }
@inline(__always) private func real<T, U>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<U> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: U.self)
}
