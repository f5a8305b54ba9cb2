// SSMKit: the numerical engine for structured state space sequence models on the CPU.
//
// Dimension legend used across the engine:
//   B batch · H channels · C output channels (kernel copies) · L length · Lk kernel length
//   n FFT size · N state · D inner · G groups
//
// Layout: every tensor is contiguous, row-major, channels-first (`u: (B, H, L)`).

@_exported import ComplexModule
@_exported import RealModule

import CSSMKitKernels
#if canImport(Glibc)
import Glibc
#endif

/// This build of SSMKit and what it chose for the CPU it runs on.
public enum BuildInfo {
    /// The package version.
    public static let version = "0.1.0"

    /// The copy of the C SIMD loops that this CPU runs: `avx512f`, `avx2` or `baseline`. The
    /// loops are compiled three times and the copy is chosen when the library loads.
    public static var simdPath: String { String(cString: ssm_simd_path()) }

    /// The library that runs SSMKit's GEMMs and why (``BLAS/backendDescription``).
    public static var blas: String { BLAS.backendDescription }

    /// Whether this process runs under AddressSanitizer (its runtime is loaded), as
    /// `scripts/sanitize.sh address` runs the tests.
    public static var underAddressSanitizer: Bool { dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil }

    /// The CPU's model name (Linux's /proc/cpuinfo), to name beside every timing; "unknown"
    /// elsewhere.
    public static var cpuModel: String {
        guard let bytes = try? FileIO.readAll("/proc/cpuinfo") else { return "unknown" }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
            }
        }
        return "unknown"
    }
}
