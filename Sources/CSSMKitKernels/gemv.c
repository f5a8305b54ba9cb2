#include "gemv.h"

#include <string.h>

#include "clones.h"

// Matrix-vector products for step mode, where each weight is read once per token and the
// product runs at the speed memory delivers the matrix: the rows are read in order, one
// sequential stream (x stays in the first-level cache), each row's sum split over the vector
// lanes (the order of the additions differs from a sequential sum by rounding only, hence the
// reassociation pragma that lets the loop vectorize).

#define SSM_GEMV_BODY(WT, T, LOAD)                                                                  \
    _Pragma("clang fp reassociate(on)")                                                             \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                          \
        const WT *w = W + r * ld;                                                                   \
        T s = 0;                                                                                    \
        for (ptrdiff_t j = 0; j < cols; j++) s += LOAD(w[j]) * x[j];                                \
        y[r] = accumulate ? y[r] + s : s;                                                           \
    }

#define SSM_IDENTITY(v) (v)

static inline float ssm_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

SSM_CLONES void ssm_gemv_f32(const float *restrict W, ptrdiff_t ld, const float *restrict x, float *restrict y, ptrdiff_t rows,
                             ptrdiff_t cols, int accumulate) {
    SSM_GEMV_BODY(float, float, SSM_IDENTITY)
}

SSM_CLONES void ssm_gemv_f64(const double *restrict W, ptrdiff_t ld, const double *restrict x, double *restrict y, ptrdiff_t rows,
                             ptrdiff_t cols, int accumulate) {
    SSM_GEMV_BODY(double, double, SSM_IDENTITY)
}

SSM_CLONES void ssm_gemv_bf16(const uint16_t *restrict W, ptrdiff_t ld, const float *restrict x, float *restrict y, ptrdiff_t rows,
                              ptrdiff_t cols, int accumulate) {
    SSM_GEMV_BODY(uint16_t, float, ssm_bf16_to_f32)
}

SSM_CLONES float ssm_sum_f32(const float *restrict x, ptrdiff_t count) {
    _Pragma("clang fp reassociate(on)")
    float s = 0;
    for (ptrdiff_t i = 0; i < count; i++) s += x[i];
    return s;
}
