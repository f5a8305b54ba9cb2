#if canImport(Glibc)
import Glibc
#endif
import CSSMKitFFTW
import ComplexModule

/// How hard FFTW's planner searches for a fast algorithm (FFTW's planner flags).
///
/// `estimate` (the default) plans instantly from a heuristic, and its plans are the same in
/// every process, so results repeat bit for bit across runs; `measure` times candidate
/// algorithms the first time a size is used (seconds for L ≈ 2^20, minutes at 2^22); `patient`
/// and `exhaustive` search longer still. Saved wisdom (``FFT/saveWisdomCache()`` or
/// ``FFT/exportWisdom(to:)``) makes later planning of the same sizes with the same effort instant.
public enum FFTPlannerEffort: String, Sendable, CaseIterable {
    case estimate, measure, patient, exhaustive

    @usableFromInline var flags: UInt32 {
        switch self {
        case .estimate: fftwEstimate
        case .measure: fftwMeasure
        case .patient: fftwPatient
        case .exhaustive: fftwExhaustive
        }
    }
}

/// A pair of FFTW plans for real transforms of size `size`: real → half spectrum (r2c) and
/// half spectrum → real (c2r). Both are unnormalized: `inverse(forward(x)) = size · x`.
///
/// Plans come from ``FFT/plan(size:as:effort:)``, are never destroyed, and are safe to execute
/// from many threads at once: execution goes through FFTW's new-array functions
/// (`fftw_execute_dft_r2c` / `_c2r`), which FFTW documents as thread-safe. Every array passed
/// must be 64-byte aligned (memory from `AlignedBuffer` at `alignedStride(_:of:)` offsets),
/// as the arrays the plan was made with were.
public final class RealFFT<T: FFTScalar>: @unchecked Sendable {
    /// Transform length n.
    public let size: Int
    /// Number of complex values in a half spectrum: n/2 + 1.
    public let spectrumCount: Int
    @usableFromInline let forwardPlan: OpaquePointer
    @usableFromInline let inversePlan: OpaquePointer

    init(size: Int, flags: UInt32) {
        precondition(size >= 1 && size <= Int(Int32.max), "RealFFT: size \(size) out of range")
        self.size = size
        spectrumCount = size / 2 + 1
        // Planning with measure or patient overwrites its arrays, so plan on scratch arrays.
        let real = AlignedBuffer<T>(count: size)
        let spectrum = AlignedBuffer<Complex<T>>(count: spectrumCount)
        guard let f = T.fftwPlanForward(size: Int32(size), real.base, spectrum.base, flags: flags),
              let i = T.fftwPlanInverse(size: Int32(size), spectrum.base, real.base, flags: flags)
        else { fatalError("FFTW could not plan a real transform of size \(size)") }
        forwardPlan = f
        inversePlan = i
        withExtendedLifetime((real, spectrum)) {}
    }

    /// `spectrum[0 ..< n/2+1] = rfft(real[0 ..< n])`. `real` is preserved.
    @inlinable @inline(__always)
    public func forward(_ real: UnsafeMutablePointer<T>, _ spectrum: UnsafeMutablePointer<Complex<T>>) {
        T.fftwExecuteForward(forwardPlan, real, spectrum)
    }

    /// `real[0 ..< n] = n · irfft(spectrum)`. FFTW's c2r destroys `spectrum`: never pass a
    /// spectrum that is needed afterwards.
    @inlinable @inline(__always)
    public func inverse(_ spectrum: UnsafeMutablePointer<Complex<T>>, _ real: UnsafeMutablePointer<T>) {
        T.fftwExecuteInverse(inversePlan, spectrum, real)
    }
}

/// The process-wide FFT configuration, plan cache and FFTW wisdom.
///
/// FFTW's planner is not thread-safe, so every planner call (planning, wisdom import and export)
/// happens under one lock; plans are cached by (precision, size, effort) and shared by every
/// caller, which also makes results bit-identical across threads and instances.
///
/// Process-wide state: the first plan or wisdom import calls `fftw_init_threads` and
/// `fftw_plan_with_nthreads(1)` for both precisions (SSMKit runs each transform on one thread
/// and parallelizes across rows), which also applies to FFTW plans the program makes itself
/// afterwards. Wisdom lives in FFTW's process-wide store; SSMKit reads or writes a file only when asked
/// (``loadWisdomCache()``, ``saveWisdomCache()``, ``importWisdom(from:)``, ``exportWisdom(to:)``).
public enum FFT {
    struct PlanKey: Hashable {
        let precision: ObjectIdentifier
        let size: Int
        let effort: FFTPlannerEffort
    }

    struct State {
        var plans: [PlanKey: AnyObject] = [:]
        var defaultEffort: FFTPlannerEffort = .estimate
        var threadsInitialized = false
    }

    static let state = Locked(State())

    /// Registers FFTW's threaded solvers (once). Each plan runs on one thread, since SSMKit
    /// parallelizes across rows instead. Wisdom names the solvers it was made with, so this
    /// must also precede any wisdom import: FFTW rejects wisdom whose solvers differ.
    static func initializeThreads(_ state: inout State) {
        guard !state.threadsInitialized else { return }
        Float.fftwInitThreads(); Double.fftwInitThreads()
        Float.fftwPlanWithThreads(1); Double.fftwPlanWithThreads(1)
        state.threadsInitialized = true
    }

    /// The planner effort used when a caller does not name one. Starts as `.estimate`.
    public static var defaultEffort: FFTPlannerEffort {
        get { state.withLock { $0.defaultEffort } }
        set { state.withLock { $0.defaultEffort = newValue } }
    }

    /// The cached plan pair for real transforms of length `size` in precision `T`, made on first
    /// use with `effort` (default ``defaultEffort``). Thread-safe.
    public static func plan<T: FFTScalar>(size: Int, as type: T.Type = T.self,
                                          effort: FFTPlannerEffort? = nil) -> RealFFT<T> {
        state.withLock { state in
            let effort = effort ?? state.defaultEffort
            let key = PlanKey(precision: ObjectIdentifier(T.self), size: size, effort: effort)
            if let plan = state.plans[key] { return plan as! RealFFT<T> }
            initializeThreads(&state)
            let plan = RealFFT<T>(size: size, flags: effort.flags)
            state.plans[key] = plan
            return plan
        }
    }

    /// Writes the accumulated FFTW wisdom of both precisions to `path` (a temporary file renamed
    /// into place). Load it in a later run with ``importWisdom(from:)`` to skip measuring.
    public static func exportWisdom(to path: String) throws {
        let text = state.withLock { _ in
            WisdomFile(float64: Double.fftwExportWisdom() ?? "", float32: Float.fftwExportWisdom() ?? "")
        }
        try FileIO.writeAtomically(Array(text.encoded.utf8), to: path)
    }

    /// Loads wisdom written by ``exportWisdom(to:)``.
    /// - Throws: ``WisdomError`` when the file is unreadable or not SSMKit wisdom.
    public static func importWisdom(from path: String) throws {
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path) } catch {
            throw WisdomError.unreadable(path: path, reason: "\(error)")
        }
        guard let wisdom = WisdomFile(decoding: String(decoding: bytes, as: UTF8.self)) else {
            throw WisdomError.malformed(path: path, reason: "not an SSMKit FFTW wisdom file")
        }
        let ok = state.withLock { state in
            initializeThreads(&state)
            return (wisdom.float64.isEmpty || Double.fftwImportWisdom(wisdom.float64))
                && (wisdom.float32.isEmpty || Float.fftwImportWisdom(wisdom.float32))
        }
        if !ok { throw WisdomError.malformed(path: path, reason: "FFTW rejected the wisdom it holds") }
    }

    /// The wisdom cache file: `$SSMKIT_CACHE_DIR/fftw-wisdom`, else
    /// `$XDG_CACHE_HOME/ssmkit/fftw-wisdom`, else `$HOME/.cache/ssmkit/fftw-wisdom` (nil when
    /// none of the three is set). Delete the file, or call ``clearWisdomCache()``, to start over.
    public static var wisdomCachePath: String? {
        func variable(_ name: String) -> String? {
            guard let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty else { return nil }
            return value
        }
        if let dir = variable("SSMKIT_CACHE_DIR") { return dir + "/fftw-wisdom" }
        if let dir = variable("XDG_CACHE_HOME") { return dir + "/ssmkit/fftw-wisdom" }
        if let home = variable("HOME") { return home + "/.cache/ssmkit/fftw-wisdom" }
        return nil
    }

    /// Loads the wisdom cache (``wisdomCachePath``) when it exists. Returns whether a file was
    /// loaded. - Throws: ``WisdomError`` when the file exists but cannot be used.
    @discardableResult
    public static func loadWisdomCache() throws -> Bool {
        guard let path = wisdomCachePath, access(path, F_OK) == 0 else { return false }
        try importWisdom(from: path)
        return true
    }

    /// Writes FFTW's accumulated wisdom to the cache (``wisdomCachePath``), creating its folder.
    /// - Throws: ``WisdomError/noCacheFolder`` when no cache location is known; `FileError` when
    ///   it cannot be written.
    public static func saveWisdomCache() throws {
        guard let path = wisdomCachePath else { throw WisdomError.noCacheFolder }
        try FileIO.makeDirectories(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]))
        try exportWisdom(to: path)
    }

    /// Deletes the wisdom cache file (nothing happens when there is none) and forgets the
    /// wisdom of this process, so that later plans are searched afresh.
    /// - Throws: ``WisdomError/noCacheFolder`` when no cache location is known; `FileError`
    ///   when the file exists but cannot be removed.
    public static func clearWisdomCache() throws {
        state.withLock { _ in Double.fftwForgetWisdom(); Float.fftwForgetWisdom() }
        guard let path = wisdomCachePath else { throw WisdomError.noCacheFolder }
        if unlink(path) != 0, errno != ENOENT { throw FileError(path: path, reason: "cannot remove: \(FileIO.errnoText())") }
    }
}

/// An error loading FFTW wisdom.
public enum WisdomError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)
    /// None of SSMKIT_CACHE_DIR, XDG_CACHE_HOME and HOME is set, so the cache has no place.
    case noCacheFolder

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "wisdom file \(path): cannot be read (\(reason))"
        case let .malformed(path, reason):
            "wisdom file \(path): \(reason)" + (path == FFT.wisdomCachePath ? " (the cache: `ssm wisdom clear` deletes it)" : "")
        case .noCacheFolder: "wisdom cache: no folder for it, expected SSMKIT_CACHE_DIR, XDG_CACHE_HOME or HOME to be set"
        }
    }
}

/// Both precisions' wisdom in one text file: a marker line, then each FFTW wisdom block after
/// a line naming its precision.
struct WisdomFile {
    static let marker = "# SSMKit FFTW wisdom v1"
    var float64: String
    var float32: String

    init(float64: String, float32: String) {
        self.float64 = float64
        self.float32 = float32
    }

    var encoded: String {
        "\(Self.marker)\n[float64]\n\(float64)\n[float32]\n\(float32)\n"
    }

    init?(decoding text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(Self.marker),
              let i64 = lines.firstIndex(of: "[float64]"),
              let i32 = lines.firstIndex(of: "[float32]"), i64 < i32
        else { return nil }
        float64 = lines[(i64 + 1) ..< i32].joined(separator: "\n").trimmingWhitespace()
        float32 = lines[(i32 + 1)...].joined(separator: "\n").trimmingWhitespace()
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
