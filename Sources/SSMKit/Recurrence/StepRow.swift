import CSSMKitKernels

/// One row's inputs and outputs as CSSMKitKernels's loops see them (see recurrence.h).
public struct StepRowIO<T> {
    public var size: Int
    public var copies: Int
    public var cRe: UnsafePointer<T>
    public var cIm: UnsafePointer<T>
    public var cStride: Int
    public var d: UnsafePointer<T>?
    public var dStride: Int
    public var scale: T
    public var u: UnsafePointer<T>
    public var uStride: Int
    public var y: UnsafeMutablePointer<T>
    public var yCopy: Int
    public var yStride: Int
    public var steps: Int
}

/// Which step loop a row runs.
public enum StepForm: Sendable, Equatable { case diagonal, linear, dense }

/// One channel's step operator: which loop, and its arrays (split real / imaginary parts).
public struct StepRowParameters<T> {
    public var form: StepForm
    /// diagonal: μ and b̄; linear: 2/Δ + Λ and 2B; dense: b̄ (and Ā in aRe, aIm).
    public var re: UnsafePointer<T>, im: UnsafePointer<T>
    public var bRe: UnsafePointer<T>, bIm: UnsafePointer<T>
    /// linear: D = (2/Δ − Λ)⁻¹ in dinv, P (R, n) in aRe, aIm, (I + P*DP)⁻¹ (R, R) in inverse;
    /// dense: Ā (n, n) in aRe, aIm.
    public var dinvRe: UnsafePointer<T>?, dinvIm: UnsafePointer<T>?
    public var aRe: UnsafePointer<T>?, aIm: UnsafePointer<T>?
    public var inverse: UnsafePointer<T>?
    public var rank: Int
}

/// A scalar whose step-mode rows run in C: `Float` or `Double`.
public protocol StepRowScalar: FFTScalar {
    /// Advances one row's state through its tokens (see ``StepEngine``).
    static func stepRow(_ io: StepRowIO<Self>, _ p: StepRowParameters<Self>, xRe: UnsafeMutablePointer<Self>,
                        xIm: UnsafeMutablePointer<Self>, work: UnsafeMutablePointer<Self>)
}

extension Float: StepRowScalar {}
extension Double: StepRowScalar {}

extension Float {
    public static func stepRow(_ io: StepRowIO<Float>, _ p: StepRowParameters<Float>, xRe: UnsafeMutablePointer<Float>,
                               xIm: UnsafeMutablePointer<Float>, work: UnsafeMutablePointer<Float>) {
        var c = ssm_step_io_f32(size: io.size, copies: io.copies, c_re: io.cRe, c_im: io.cIm, c_stride: io.cStride, d: io.d,
                                d_stride: io.dStride, scale: io.scale, u: io.u, u_stride: io.uStride, y: io.y,
                                y_copy: io.yCopy, y_stride: io.yStride, steps: io.steps)
        switch p.form {
        case .diagonal: ssm_step_diagonal_f32(&c, p.re, p.im, p.bRe, p.bIm, xRe, xIm)
        case .linear: ssm_step_linear_f32(&c, p.rank, p.re, p.im, p.dinvRe, p.dinvIm, p.aRe, p.aIm, p.bRe, p.bIm, p.inverse, xRe, xIm, work)
        case .dense: ssm_step_dense_f32(&c, p.aRe, p.aIm, p.bRe, p.bIm, xRe, xIm, work)
        }
    }
}

extension Double {
    public static func stepRow(_ io: StepRowIO<Double>, _ p: StepRowParameters<Double>, xRe: UnsafeMutablePointer<Double>,
                               xIm: UnsafeMutablePointer<Double>, work: UnsafeMutablePointer<Double>) {
        var c = ssm_step_io_f64(size: io.size, copies: io.copies, c_re: io.cRe, c_im: io.cIm, c_stride: io.cStride, d: io.d,
                                d_stride: io.dStride, scale: io.scale, u: io.u, u_stride: io.uStride, y: io.y,
                                y_copy: io.yCopy, y_stride: io.yStride, steps: io.steps)
        switch p.form {
        case .diagonal: ssm_step_diagonal_f64(&c, p.re, p.im, p.bRe, p.bIm, xRe, xIm)
        case .linear: ssm_step_linear_f64(&c, p.rank, p.re, p.im, p.dinvRe, p.dinvIm, p.aRe, p.aIm, p.bRe, p.bIm, p.inverse, xRe, xIm, work)
        case .dense: ssm_step_dense_f64(&c, p.aRe, p.aIm, p.bRe, p.bIm, xRe, xIm, work)
        }
    }
}
