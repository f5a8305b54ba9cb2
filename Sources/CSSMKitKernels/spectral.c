#include "spectral.h"

#include "clones.h"

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

// Real rows on either side of the transforms. Each value is rounded as the plain expression
// rounds it, the product before the sum (no fused multiply-add), so that every clone gives the
// bits of the scalar loop.
#define SSM_ROWS(T, SUFFIX)                                                                       \
    SSM_CLONES void ssm_row_multiply_##SUFFIX(const T *restrict a, const T *restrict b,           \
                                              T *restrict out, ptrdiff_t count) {                 \
        for (ptrdiff_t i = 0; i < count; i++) out[i] = a[i] * b[i];                               \
    }                                                                                             \
    SSM_CLONES void ssm_row_add_##SUFFIX(T *restrict out, const T *restrict a, ptrdiff_t count) { \
        for (ptrdiff_t i = 0; i < count; i++) out[i] += a[i];                                     \
    }                                                                                             \
    SSM_CLONES void ssm_row_add_scaled_##SUFFIX(T *restrict out, const T *restrict a, T scale,    \
                                                ptrdiff_t count) {                                \
        _Pragma("STDC FP_CONTRACT OFF")                                                           \
        for (ptrdiff_t i = 0; i < count; i++) out[i] += a[i] * scale;                             \
    }

SSM_ROWS(float, f32)
SSM_ROWS(double, f64)
