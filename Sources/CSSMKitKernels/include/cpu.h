#ifndef SSMKIT_CPU_H
#define SSMKIT_CPU_H
// What this CPU runs of the SIMD loops, and what the GEMM library choice needs to know.

/// The clone of the SIMD loops (spectral products, selective scan, step engine) that this CPU
/// runs: "avx512f", "avx2" or "baseline", by the same test, in the same order, as the loader's
/// choice among the target_clones copies.
const char *ssm_simd_path(void);

/// 1 when this CPU has AVX2 and FMA (and the OS saves their registers), else 0.
int ssm_cpu_has_avx2_fma(void);

/// A hint to the CPU inside a spin-wait loop (x86 `pause`): yields the core's shared resources
/// to the other hardware thread and saves power while the loop waits.
void ssm_cpu_relax(void);

#endif
