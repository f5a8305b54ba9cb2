#ifndef SSMKIT_GEMV_H
#define SSMKIT_GEMV_H

#include <stddef.h>
#include <stdint.h>

// y[r] = Σ_j W[r·ld + j]·x[j] for r in [0, rows), or y[r] += … when accumulate is non-zero:
// a row-major matrix times a vector, the product of one token through a linear layer. The
// bf16 version reads W as bfloat16 (the upper halves of float32 values) and computes in float.
void ssm_gemv_f32(const float *W, ptrdiff_t ld, const float *x, float *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate);
void ssm_gemv_f64(const double *W, ptrdiff_t ld, const double *x, double *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate);
void ssm_gemv_bf16(const uint16_t *W, ptrdiff_t ld, const float *x, float *y, ptrdiff_t rows, ptrdiff_t cols, int accumulate);

// c = alpha·a·b + beta·c for row-major a (m × k), b (k × n), c (m × n), none transposed, with
// n ≤ SSM_GEMM_MAX_COLUMNS; c is not read when beta is 0 (BLAS's convention). SSMKit runs the
// last few columns of a small product here in place of OpenBLAS's AVX-512 small-matrix kernels,
// which allocate a buffer on each call for them (BLAS.swift).
#define SSM_GEMM_MAX_COLUMNS 16
void ssm_gemm_columns_f32(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a, ptrdiff_t lda, const float *b,
                          ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc);
void ssm_gemm_columns_f64(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha, const double *a, ptrdiff_t lda, const double *b,
                          ptrdiff_t ldb, double beta, double *c, ptrdiff_t ldc);

// out[r] += Σ_j x[r·cols + j] for r in [0, rows): row sums of a row-major matrix, in an order
// fixed by cols alone (16 float or 8 double lanes, then the tail), whatever the CPU.
void ssm_row_sums_f32(const float *x, ptrdiff_t rows, ptrdiff_t cols, float *out);
void ssm_row_sums_f64(const double *x, ptrdiff_t rows, ptrdiff_t cols, double *out);

// Σ x[i]: a read of the whole array at the speed memory streams it (the decode bound's yardstick).
float ssm_sum_f32(const float *x, ptrdiff_t count);
#endif
