import CSSMKitFFTW
import CSSMKitKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ComplexModule
import RealModule

// Planner flags of <fftw3.h>, spelled out so that no macro import is relied upon.
@usableFromInline let fftwMeasure: UInt32 = 0
@usableFromInline let fftwExhaustive: UInt32 = 1 << 3
@usableFromInline let fftwPatient: UInt32 = 1 << 5
@usableFromInline let fftwEstimate: UInt32 = 1 << 6

/// A floating-point type that FFTW transforms: `Float` (libfftw3f) or `Double` (libfftw3).
///
/// The bound of the engine's lowest layer (FFTs, convolutions, GEMMs, kernels): its
/// requirements use C types only. The layers above add theirs by refinement
/// (``SelectiveScanScalar``, ``StepRowScalar``, ``SafeTensorsScalar``), and ``SSMScalar`` is
/// all of them. Every numerical routine is generic over one of these, so that Float and Double
/// run through one code path that the compiler specializes. `Complex<Self>` has the memory
/// layout `(real, imaginary)` of `fftw_complex`, so complex buffers are handed to FFTW as is.
public protocol FFTScalar: BinaryFloatingPoint, Real, SIMDScalar, Codable, Sendable
where Self.RawSignificand: FixedWidthInteger {
    /// `"float32"` or `"float64"`.
    static var precisionName: String { get }

    // The calls below are the only contact with FFTW's C API; only FFT code uses them.
    static func fftwPlanForward(size: Int32, _ input: UnsafeMutablePointer<Self>,
                                _ output: UnsafeMutablePointer<Complex<Self>>, flags: UInt32) -> OpaquePointer?
    static func fftwPlanInverse(size: Int32, _ input: UnsafeMutablePointer<Complex<Self>>,
                                _ output: UnsafeMutablePointer<Self>, flags: UInt32) -> OpaquePointer?
    static func fftwExecuteForward(_ plan: OpaquePointer, _ input: UnsafeMutablePointer<Self>,
                                   _ output: UnsafeMutablePointer<Complex<Self>>)
    static func fftwExecuteInverse(_ plan: OpaquePointer, _ input: UnsafeMutablePointer<Complex<Self>>,
                                   _ output: UnsafeMutablePointer<Self>)
    static func fftwDestroy(_ plan: OpaquePointer)
    static func fftwPlanWithThreads(_ count: Int32)
    static func fftwInitThreads()
    static func fftwExportWisdom() -> String?
    static func fftwImportWisdom(_ text: String) -> Bool
    static func fftwForgetWisdom()

    // Interleaved complex products of CSSMKitKernels (see SpectralProducts.swift).
    static func spectralMultiply(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ count: Int)
    static func spectralMultiplyInPlace(_ a: UnsafeMutableRawPointer, _ b: UnsafeRawPointer, _ count: Int)
    static func spectralMultiplyConjugate(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ out: UnsafeMutableRawPointer,
                                          _ count: Int, _ accumulate: Bool)

    // The vectorized exponential of CSSMKitKernels (the scan's, also used by the layers).
    static func vectorExp(_ x: UnsafePointer<Self>, _ out: UnsafeMutablePointer<Self>, _ count: Int)

    // BLAS GEMM (see Support/BLAS.swift).
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int, beta: Self,
                     c: UnsafeMutablePointer<Self>, ldc: Int)
}

@inline(__always)
private func asFFTWComplex<T>(_ p: UnsafeMutablePointer<Complex<T>>) -> OpaquePointer { OpaquePointer(p) }

extension Double: FFTScalar {
    public static var precisionName: String { "float64" }
    public static func fftwPlanForward(size: Int32, _ input: UnsafeMutablePointer<Double>,
                                       _ output: UnsafeMutablePointer<Complex<Double>>, flags: UInt32) -> OpaquePointer? {
        fftw_plan_dft_r2c_1d(size, input, UnsafeMutablePointer(asFFTWComplex(output)), flags)
    }
    public static func fftwPlanInverse(size: Int32, _ input: UnsafeMutablePointer<Complex<Double>>,
                                       _ output: UnsafeMutablePointer<Double>, flags: UInt32) -> OpaquePointer? {
        fftw_plan_dft_c2r_1d(size, UnsafeMutablePointer(asFFTWComplex(input)), output, flags)
    }
    @inline(__always)
    public static func fftwExecuteForward(_ plan: OpaquePointer, _ input: UnsafeMutablePointer<Double>,
                                          _ output: UnsafeMutablePointer<Complex<Double>>) {
        fftw_execute_dft_r2c(plan, input, UnsafeMutablePointer(asFFTWComplex(output)))
    }
    @inline(__always)
    public static func fftwExecuteInverse(_ plan: OpaquePointer, _ input: UnsafeMutablePointer<Complex<Double>>,
                                          _ output: UnsafeMutablePointer<Double>) {
        fftw_execute_dft_c2r(plan, UnsafeMutablePointer(asFFTWComplex(input)), output)
    }
    public static func fftwDestroy(_ plan: OpaquePointer) { fftw_destroy_plan(plan) }
    public static func fftwPlanWithThreads(_ count: Int32) { fftw_plan_with_nthreads(count) }
    public static func fftwInitThreads() { _ = fftw_init_threads() }
    public static func fftwExportWisdom() -> String? {
        guard let text = fftw_export_wisdom_to_string() else { return nil }
        defer { free(text) }
        return String(cString: text)
    }
    public static func fftwImportWisdom(_ text: String) -> Bool { fftw_import_wisdom_from_string(text) != 0 }
    public static func fftwForgetWisdom() { fftw_forget_wisdom() }
    @inline(__always)
    public static func spectralMultiply(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ count: Int) {
        ssm_spectral_multiply_f64(a.assumingMemoryBound(to: Double.self), b.assumingMemoryBound(to: Double.self),
                                   out.assumingMemoryBound(to: Double.self), count)
    }
    @inline(__always)
    public static func spectralMultiplyInPlace(_ a: UnsafeMutableRawPointer, _ b: UnsafeRawPointer, _ count: Int) {
        ssm_spectral_multiply_inplace_f64(a.assumingMemoryBound(to: Double.self), b.assumingMemoryBound(to: Double.self), count)
    }
    @inline(__always)
    public static func spectralMultiplyConjugate(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ out: UnsafeMutableRawPointer,
                                                 _ count: Int, _ accumulate: Bool) {
        ssm_spectral_multiply_conjugate_f64(a.assumingMemoryBound(to: Double.self), b.assumingMemoryBound(to: Double.self),
                                             out.assumingMemoryBound(to: Double.self), count, accumulate ? 1 : 0)
    }
}

extension Float: FFTScalar {
    public static var precisionName: String { "float32" }
    public static func fftwPlanForward(size: Int32, _ input: UnsafeMutablePointer<Float>,
                                       _ output: UnsafeMutablePointer<Complex<Float>>, flags: UInt32) -> OpaquePointer? {
        fftwf_plan_dft_r2c_1d(size, input, UnsafeMutablePointer(asFFTWComplex(output)), flags)
    }
    public static func fftwPlanInverse(size: Int32, _ input: UnsafeMutablePointer<Complex<Float>>,
                                       _ output: UnsafeMutablePointer<Float>, flags: UInt32) -> OpaquePointer? {
        fftwf_plan_dft_c2r_1d(size, UnsafeMutablePointer(asFFTWComplex(input)), output, flags)
    }
    @inline(__always)
    public static func fftwExecuteForward(_ plan: OpaquePointer, _ input: UnsafeMutablePointer<Float>,
                                          _ output: UnsafeMutablePointer<Complex<Float>>) {
        fftwf_execute_dft_r2c(plan, input, UnsafeMutablePointer(asFFTWComplex(output)))
    }
    @inline(__always)
    public static func fftwExecuteInverse(_ plan: OpaquePointer, _ input: UnsafeMutablePointer<Complex<Float>>,
                                          _ output: UnsafeMutablePointer<Float>) {
        fftwf_execute_dft_c2r(plan, UnsafeMutablePointer(asFFTWComplex(input)), output)
    }
    public static func fftwDestroy(_ plan: OpaquePointer) { fftwf_destroy_plan(plan) }
    public static func fftwPlanWithThreads(_ count: Int32) { fftwf_plan_with_nthreads(count) }
    public static func fftwInitThreads() { _ = fftwf_init_threads() }
    public static func fftwExportWisdom() -> String? {
        guard let text = fftwf_export_wisdom_to_string() else { return nil }
        defer { free(text) }
        return String(cString: text)
    }
    public static func fftwImportWisdom(_ text: String) -> Bool { fftwf_import_wisdom_from_string(text) != 0 }
    public static func fftwForgetWisdom() { fftwf_forget_wisdom() }
    @inline(__always)
    public static func spectralMultiply(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ count: Int) {
        ssm_spectral_multiply_f32(a.assumingMemoryBound(to: Float.self), b.assumingMemoryBound(to: Float.self),
                                   out.assumingMemoryBound(to: Float.self), count)
    }
    @inline(__always)
    public static func spectralMultiplyInPlace(_ a: UnsafeMutableRawPointer, _ b: UnsafeRawPointer, _ count: Int) {
        ssm_spectral_multiply_inplace_f32(a.assumingMemoryBound(to: Float.self), b.assumingMemoryBound(to: Float.self), count)
    }
    @inline(__always)
    public static func spectralMultiplyConjugate(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ out: UnsafeMutableRawPointer,
                                                 _ count: Int, _ accumulate: Bool) {
        ssm_spectral_multiply_conjugate_f32(a.assumingMemoryBound(to: Float.self), b.assumingMemoryBound(to: Float.self),
                                             out.assumingMemoryBound(to: Float.self), count, accumulate ? 1 : 0)
    }
}
