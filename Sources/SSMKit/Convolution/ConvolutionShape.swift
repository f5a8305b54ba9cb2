/// The shape of a causal (or bidirectional) long convolution, the `fftconv` operation of the ssm eval contract.
///
/// Legend: B batch · H channels · C kernel copies (output channels) · L length · Lk kernel length.
///
/// - `u: (B, H, L)`
/// - `k: (C, H, Lk)` — a 2-D kernel `(H, Lk)` is C = 1; bidirectional: `(2, H, Lk)` with C = 1
/// - `D: (C, H)` (optional skip)
/// - `y: (B, C, H, L)`
///
/// Causal: y[b,c,h,t] = Σ_{j=0}^{min(t, Lk−1)} k[c,h,j] · u[b,h,t−j] + D[c,h] · u[b,h,t].
/// Bidirectional adds Σ_{j=1}^{Lk} k[1,h,j−1] · u[b,h,t+j] (terms with t + j < L).
public struct ConvolutionShape: Hashable, Sendable, CustomStringConvertible {
    public var batch: Int
    public var channels: Int
    public var length: Int
    public var kernelLength: Int
    public var kernelCopies: Int
    public var bidirectional: Bool

    public init(batch: Int, channels: Int, length: Int, kernelLength: Int? = nil,
                kernelCopies: Int = 1, bidirectional: Bool = false) {
        self.batch = batch
        self.channels = channels
        self.length = length
        self.kernelLength = kernelLength ?? length
        self.kernelCopies = kernelCopies
        self.bidirectional = bidirectional
    }

    /// The largest transform FFTW plans (its sizes are C ints).
    public static let maximumFFTSize = Int(Int32.max)

    /// Throws unless every extent is positive, Lk ≤ L, a bidirectional kernel has one copy, the
    /// FFT size is at most ``maximumFFTSize`` and every tensor's element count is representable.
    public func validate() throws(SSMError) {
        for (name, value) in [("batch", batch), ("channels", channels), ("length", length),
                              ("kernelLength", kernelLength), ("kernelCopies", kernelCopies)] where value < 1 {
            throw SSMError.value(argument: name, expected: "a positive extent, got \(value)")
        }
        if kernelLength > length {
            throw SSMError.value(argument: "kernelLength",
                                 expected: "1 ≤ Lk ≤ L = \(length), got Lk = \(kernelLength)")
        }
        if bidirectional && kernelCopies != 1 {
            throw SSMError.option(name: "bidirectional",
                                  expected: "one kernel copy (k of shape (2, H, Lk)), got C = \(kernelCopies)")
        }
        // L + Lk below 2^31 keeps the FFT size's search in range; the size itself is checked next.
        if length > Self.maximumFFTSize - kernelLength {
            throw SSMError.value(argument: "length", expected: "L + Lk ≤ \(Self.maximumFFTSize), got L = \(length), Lk = \(kernelLength)")
        }
        if fftSize > Self.maximumFFTSize {
            throw SSMError.value(argument: "length", expected: "an FFT size ≤ \(Self.maximumFFTSize), got \(fftSize) for L = \(length)")
        }
        if elementCount([batch, kernelCopies, channels, length, 2]) == nil {
            throw SSMError.value(argument: "batch, channels, length",
                                 expected: "sizes whose tensors' element counts are representable, got \(description)")
        }
    }

    /// Leading extent of the kernel tensor: 2 when bidirectional, else C.
    public var kernelRows: Int { bidirectional ? 2 : kernelCopies }
    /// Elements of u, (B, H, L).
    public var inputCount: Int { batch * channels * length }
    /// Elements of y, (B, C, H, L).
    public var outputCount: Int { batch * kernelCopies * channels * length }
    /// Elements of k, (kernelRows, H, Lk).
    public var kernelCount: Int { kernelRows * channels * kernelLength }
    /// Elements of D, (C, H).
    public var skipCount: Int { kernelCopies * channels }

    /// The FFT size n: the smallest fast size (``FFTSize/fast(atLeast:)``) with no wrap-around
    /// into the L outputs. A causal linear convolution spans L + Lk − 1 samples; the
    /// bidirectional one needs one more so that u[t + Lk] at t = L − 1 wraps onto padding.
    public var fftSize: Int {
        FFTSize.fast(atLeast: bidirectional ? length + kernelLength : length + kernelLength - 1)
    }

    public var description: String {
        "B=\(batch) H=\(channels) L=\(length) Lk=\(kernelLength) C=\(kernelCopies)"
            + (bidirectional ? " bidirectional" : "")
    }
}
