#include "gemv.h"

#include <string.h>

#include "clones.h"
#include "lanes.h"

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

// Each row's sum in fixed lanes (j mod 16 for float, j mod 8 for double), the lanes then added
// in order, the tail last: the same bits on every clone.
#define SSM_ROW_SUMS_BODY(T, V, LANES)                                                              \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                          \
        const T *row = x + r * cols;                                                                \
        V lanes = {0};                                                                              \
        ptrdiff_t j = 0;                                                                            \
        for (; j + LANES <= cols; j += LANES) {                                                     \
            V v;                                                                                    \
            memcpy(&v, row + j, sizeof v);                                                          \
            lanes += v;                                                                             \
        }                                                                                           \
        T s = 0;                                                                                    \
        for (int k = 0; k < LANES; k++) s += lanes[k];                                              \
        for (; j < cols; j++) s += row[j];                                                          \
        out[r] += s;                                                                                \
    }

SSM_CLONES void ssm_row_sums_f32(const float *restrict x, ptrdiff_t rows, ptrdiff_t cols, float *restrict out) {
    SSM_ROW_SUMS_BODY(float, ssm_v16f, 16)
}

SSM_CLONES void ssm_row_sums_f64(const double *restrict x, ptrdiff_t rows, ptrdiff_t cols, double *restrict out) {
    SSM_ROW_SUMS_BODY(double, ssm_v8d, 8)
}

// A few columns of a small product, for the columns that OpenBLAS's AVX-512 small-matrix
// kernels would pack into a buffer they allocate on each call. b's columns are packed
// (transposed) k-chunk by k-chunk into a buffer on the stack, so each entry of c is a sum of
// contiguous products that vectorizes along k, as in the matrix-vector product above.
#define SSM_GEMM_KC 256

#define SSM_GEMM_COLUMNS_BODY(T)                                                                    \
    _Pragma("clang fp reassociate(on)")                                                             \
    T bt[SSM_GEMM_MAX_COLUMNS * SSM_GEMM_KC];                                                       \
    for (ptrdiff_t i = 0; i < m; i++)                                                               \
        for (ptrdiff_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];   \
    for (ptrdiff_t p0 = 0; p0 < k; p0 += SSM_GEMM_KC) {                                             \
        const ptrdiff_t kc = k - p0 < SSM_GEMM_KC ? k - p0 : SSM_GEMM_KC;                           \
        for (ptrdiff_t p = 0; p < kc; p++)                                                          \
            for (ptrdiff_t j = 0; j < n; j++) bt[j * SSM_GEMM_KC + p] = b[(p0 + p) * ldb + j];      \
        for (ptrdiff_t i = 0; i < m; i++) {                                                         \
            const T *ai = a + i * lda + p0;                                                         \
            for (ptrdiff_t j = 0; j < n; j++) {                                                     \
                const T *bj = bt + j * SSM_GEMM_KC;                                                 \
                T s = 0;                                                                            \
                for (ptrdiff_t p = 0; p < kc; p++) s += ai[p] * bj[p];                              \
                c[i * ldc + j] += alpha * s;                                                        \
            }                                                                                       \
        }                                                                                           \
    }

SSM_CLONES void ssm_gemm_columns_f32(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *restrict a, ptrdiff_t lda,
                                     const float *restrict b, ptrdiff_t ldb, float beta, float *restrict c, ptrdiff_t ldc) {
    SSM_GEMM_COLUMNS_BODY(float)
}

SSM_CLONES void ssm_gemm_columns_f64(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha, const double *restrict a, ptrdiff_t lda,
                                     const double *restrict b, ptrdiff_t ldb, double beta, double *restrict c, ptrdiff_t ldc) {
    SSM_GEMM_COLUMNS_BODY(double)
}
