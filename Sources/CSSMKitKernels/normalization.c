#include "normalization.h"

#include <math.h>

#include "clones.h"
#include "lanes.h"

// No fused multiply-adds: every clone (and the Swift reference in the tests) rounds each product
// and sum on its own, so the three copies give the same bits.
#pragma STDC FP_CONTRACT OFF

// Positions are processed in tiles of SSM_LAYER_NORM_TILE, so that one tile of x (C values per
// position) stays in the second-level cache across the passes over it; every position's sums
// over c are unaffected by the tiling.
#define SSM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SSM_LANES 8

#define SSM_LAYER_NORM_FORWARD(T)                                                                             \
    for (ptrdiff_t t0 = 0; t0 < L; t0 += SSM_LAYER_NORM_TILE) {                                               \
        const ptrdiff_t n = SSM_MIN(SSM_LAYER_NORM_TILE, L - t0);                                             \
        double *restrict m = mean + t0, *restrict s = inv + t0;                                               \
        for (ptrdiff_t t = 0; t < n; t++) m[t] = 0, s[t] = 0;                                                 \
        for (ptrdiff_t c = 0; c < C; c++) {                                                                   \
            const T *restrict xc = x + c * L + t0;                                                            \
            for (ptrdiff_t t = 0; t < n; t++) m[t] += (double)xc[t];                                          \
        }                                                                                                     \
        for (ptrdiff_t t = 0; t < n; t++) m[t] /= (double)C;                                                  \
        for (ptrdiff_t c = 0; c < C; c++) {                                                                   \
            const T *restrict xc = x + c * L + t0;                                                            \
            for (ptrdiff_t t = 0; t < n; t++) {                                                               \
                double d = (double)xc[t] - m[t];                                                              \
                s[t] += d * d;                                                                                \
            }                                                                                                 \
        }                                                                                                     \
        for (ptrdiff_t t = 0; t < n; t++) s[t] = 1 / sqrt(s[t] / (double)C + epsilon);                        \
        for (ptrdiff_t c = 0; c < C; c++) {                                                                   \
            const T *restrict xc = x + c * L + t0;                                                            \
            T *restrict yc = y + c * L + t0;                                                                  \
            const double wc = (double)w[c], bc = (double)b[c];                                                \
            for (ptrdiff_t t = 0; t < n; t++) yc[t] = (T)(((double)xc[t] - m[t]) * s[t] * wc + bc);           \
        }                                                                                                     \
    }

SSM_CLONES void ssm_layer_norm_cm_forward_f32(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                                              double *restrict mean, double *restrict inv, ptrdiff_t C, ptrdiff_t L, double epsilon) {
    SSM_LAYER_NORM_FORWARD(float)
}

SSM_CLONES void ssm_layer_norm_cm_forward_f64(const double *restrict x, const double *restrict w, const double *restrict b,
                                              double *restrict y, double *restrict mean, double *restrict inv, ptrdiff_t C, ptrdiff_t L,
                                              double epsilon) {
    SSM_LAYER_NORM_FORWARD(double)
}

#define SSM_LOAD8_float(p) __builtin_convertvector(*(const ssm_v8f_u *)(p), ssm_v8d)
#define SSM_LOAD8_double(p) (*(const ssm_v8d_u *)(p))
#define SSM_LOAD8(T, p) SSM_LOAD8_##T(p)

// First pass over a tile: Σ_c dn and Σ_c dn·n per position (in order over c), and per channel
// Σ_t dY·n and Σ_t dY in SSM_LANES lanes (t mod SSM_LANES), the lanes then added in order.
// Second pass: dX.
#define SSM_LAYER_NORM_BACKWARD(T)                                                                            \
    for (ptrdiff_t t0 = 0; t0 < L; t0 += SSM_LAYER_NORM_TILE) {                                               \
        const ptrdiff_t n = SSM_MIN(SSM_LAYER_NORM_TILE, L - t0);                                             \
        const double *restrict m = mean + t0, *restrict s = inv + t0;                                         \
        double *restrict sumDn = scratch, *restrict sumDnN = scratch + n;                                     \
        for (ptrdiff_t t = 0; t < n; t++) sumDn[t] = 0, sumDnN[t] = 0;                                        \
        for (ptrdiff_t c = 0; c < C; c++) {                                                                   \
            const T *restrict xc = x + c * L + t0, *restrict gc = dY + c * L + t0;                            \
            const double wc = (double)w[c];                                                                   \
            ssm_v8d laneW = {0}, laneB = {0};                                                                 \
            ptrdiff_t t = 0;                                                                                  \
            for (; t + SSM_LANES <= n; t += SSM_LANES) {                                                      \
                const ssm_v8d nt = (SSM_LOAD8(T, xc + t) - SSM_LOAD8(double, m + t)) * SSM_LOAD8(double, s + t); \
                const ssm_v8d g = SSM_LOAD8(T, gc + t), dn = g * wc;                                          \
                *(ssm_v8d_u *)(sumDn + t) += dn;                                                              \
                *(ssm_v8d_u *)(sumDnN + t) += dn * nt;                                                        \
                laneW += g * nt;                                                                              \
                laneB += g;                                                                                   \
            }                                                                                                 \
            for (int j = 0; t < n; t++, j++) {                                                                \
                const double nt = ((double)xc[t] - m[t]) * s[t], g = (double)gc[t];                           \
                const double dn = g * wc;                                                                     \
                sumDn[t] += dn;                                                                               \
                sumDnN[t] += dn * nt;                                                                         \
                laneW[j] += g * nt;                                                                           \
                laneB[j] += g;                                                                                \
            }                                                                                                 \
            double sw = 0, sb = 0;                                                                            \
            for (int j = 0; j < SSM_LANES; j++) sw += laneW[j], sb += laneB[j];                               \
            dw[c] += sw;                                                                                      \
            db[c] += sb;                                                                                      \
        }                                                                                                     \
        for (ptrdiff_t t = 0; t < n; t++) sumDn[t] /= (double)C, sumDnN[t] /= (double)C;                      \
        for (ptrdiff_t c = 0; c < C; c++) {                                                                   \
            const T *restrict xc = x + c * L + t0, *restrict gc = dY + c * L + t0;                            \
            T *restrict dxc = dX + c * L + t0;                                                                \
            const double wc = (double)w[c];                                                                   \
            for (ptrdiff_t t = 0; t < n; t++) {                                                               \
                const double nt = ((double)xc[t] - m[t]) * s[t], dn = (double)gc[t] * wc;                     \
                dxc[t] += (T)(s[t] * (dn - sumDn[t] - nt * sumDnN[t]));                                       \
            }                                                                                                 \
        }                                                                                                     \
    }

SSM_CLONES void ssm_layer_norm_cm_backward_f32(const float *restrict dY, const float *restrict x, const float *restrict w,
                                               const double *restrict mean, const double *restrict inv, float *restrict dX,
                                               double *restrict dw, double *restrict db, double *restrict scratch, ptrdiff_t C, ptrdiff_t L) {
    SSM_LAYER_NORM_BACKWARD(float)
}

SSM_CLONES void ssm_layer_norm_cm_backward_f64(const double *restrict dY, const double *restrict x, const double *restrict w,
                                               const double *restrict mean, const double *restrict inv, double *restrict dX,
                                               double *restrict dw, double *restrict db, double *restrict scratch, ptrdiff_t C,
                                               ptrdiff_t L) {
    SSM_LAYER_NORM_BACKWARD(double)
}
