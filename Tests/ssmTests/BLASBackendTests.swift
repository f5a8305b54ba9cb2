import Testing
@testable import SSMKit

/// The GEMM library is chosen at run time (SSMKit/Support/BLAS.swift). OpenBLAS can be made to
/// misdetect any x86-64 CPU by forcing its SSE3 Prescott kernels, which is what Debian's
/// OpenBLAS 0.3.21 does by itself on CPU models it does not know.
@Suite("the GEMM library is chosen at run time")
struct BLASBackendTests {
    @Test("ssm --version names the SIMD path and the GEMM library")
    func version() throws {
        let run = try runSSM(["--version"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("SIMD ") && (run.stdout.contains("OpenBLAS") || run.stdout.contains("BLIS")), "\(run.stdout)")
    }

    /// On a CPU without AVX2 OpenBLAS's choice stands (there is nothing faster to switch to),
    /// so the test does not apply there and is reported as skipped; under AddressSanitizer BLIS
    /// cannot be loaded (its runtime refuses RTLD_DEEPBIND), so it is skipped there too.
    @Test("OpenBLAS reporting Prescott kernels on an AVX2 CPU makes SSMKit use BLIS, whose GEMMs pass the fixtures",
          .enabled(if: BuildInfo.simdPath != "baseline", "no AVX2 copy of the loops runs (the CPU has no AVX2, or a ThreadSanitizer build)"),
          .enabled(if: !BuildInfo.underAddressSanitizer, "BLIS is not loaded under AddressSanitizer"))
    func misdetectedOpenBLAS() throws {
        let version = try runSSM(["--version"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(version.stdout.contains("BLIS") && version.stdout.contains("prescott"), "\(version.stdout)")
        for environment in [["OPENBLAS_CORETYPE": "Prescott"], ["SSMKIT_BLAS": "blis"], ["SSMKIT_BLAS": "openblas"]] {
            let run = try runSSM(["verify", "--fixtures", fixtureDirectory, "--op", "mamba,s4d-layer"], environment: environment)
            #expect(run.status == 0 && run.stdout.contains("4 passed, 0 failed"), "\(environment): \(run.stdout)\(run.stderr)")
        }
    }
}
