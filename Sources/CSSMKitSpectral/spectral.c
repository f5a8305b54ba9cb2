#include "spectral.h"

// Clones for x86-64 CPUs with AVX2 or AVX-512; other architectures get the plain loop, which
// their compilers vectorize for their own baseline.
#if defined(__x86_64__) && defined(__ELF__) && defined(__clang__)
#define SSM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SSM_CLONES
#endif

const char *ssm_simd_path(void) {
#if defined(__x86_64__) && defined(__ELF__) && defined(__clang__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "baseline";
}

int ssm_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) && defined(__clang__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

// One body per precision, instantiated for float and double.
#define SSM_SPECTRAL(T, SUFFIX)                                                                   \
    SSM_CLONES void ssm_spectral_multiply_inplace_##SUFFIX(T *restrict a, const T *restrict b,   \
                                                           ptrdiff_t count) {                    \
        for (ptrdiff_t i = 0; i < count; i++) {                                                   \
            T ar = a[2 * i], ai = a[2 * i + 1], br = b[2 * i], bi = b[2 * i + 1];                 \
            a[2 * i] = ar * br - ai * bi;                                                         \
            a[2 * i + 1] = ar * bi + ai * br;                                                     \
        }                                                                                         \
    }                                                                                             \
    SSM_CLONES void ssm_spectral_multiply_##SUFFIX(const T *restrict a, const T *restrict b,     \
                                                   T *restrict out, ptrdiff_t count) {           \
        for (ptrdiff_t i = 0; i < count; i++) {                                                   \
            T ar = a[2 * i], ai = a[2 * i + 1], br = b[2 * i], bi = b[2 * i + 1];                 \
            out[2 * i] = ar * br - ai * bi;                                                       \
            out[2 * i + 1] = ar * bi + ai * br;                                                   \
        }                                                                                         \
    }                                                                                             \
    SSM_CLONES void ssm_spectral_multiply_conjugate_##SUFFIX(                                     \
        const T *restrict a, const T *restrict b, T *restrict out, ptrdiff_t count,               \
        int accumulate) {                                                                         \
        if (accumulate) {                                                                         \
            for (ptrdiff_t i = 0; i < count; i++) {                                               \
                T ar = a[2 * i], ai = a[2 * i + 1], br = b[2 * i], bi = b[2 * i + 1];             \
                out[2 * i] += ar * br + ai * bi;                                                  \
                out[2 * i + 1] += ar * bi - ai * br;                                              \
            }                                                                                     \
        } else {                                                                                  \
            for (ptrdiff_t i = 0; i < count; i++) {                                               \
                T ar = a[2 * i], ai = a[2 * i + 1], br = b[2 * i], bi = b[2 * i + 1];             \
                out[2 * i] = ar * br + ai * bi;                                                   \
                out[2 * i + 1] = ar * bi - ai * br;                                               \
            }                                                                                     \
        }                                                                                         \
    }

SSM_SPECTRAL(float, f32)
SSM_SPECTRAL(double, f64)
