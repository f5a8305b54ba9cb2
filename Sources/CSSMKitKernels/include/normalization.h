#ifndef SSMKIT_NORMALIZATION_H
#define SSMKIT_NORMALIZATION_H

#include <stddef.h>

// LayerNorm over the channels of one channel-major sequence x: (C, L), the S4 models' layout
// (SSMTraining's LayerNorm.forwardChannelMajor and backwardChannelMajor, which run one call per
// sequence on each worker). Statistics and sums are in double for both element types.
//
// Forward, per position t: mean[t] = Σ_c x[c, t] / C, inv[t] = 1/√(Σ_c (x[c, t] − mean[t])²/C + ε),
// y[c, t] = (x[c, t] − mean[t])·inv[t]·w[c] + b[c]. Each position's sums run over c in order.
void ssm_layer_norm_cm_forward_f32(const float *x, const float *w, const float *b, float *y, double *mean, double *inv, ptrdiff_t C,
                                   ptrdiff_t L, double epsilon);
void ssm_layer_norm_cm_forward_f64(const double *x, const double *w, const double *b, double *y, double *mean, double *inv, ptrdiff_t C,
                                   ptrdiff_t L, double epsilon);

// Backward, with n = (x − mean)·inv and dn = dY·w[c]:
//   dX[c, t] += inv[t]·(dn − Σ_c dn / C − n·Σ_c (dn·n) / C),  dw[c] += Σ_t dY·n,  db[c] += Σ_t dY.
// dw and db are double sums the caller owns (its worker's partials). `scratch` holds
// 2·min(L, SSM_LAYER_NORM_TILE) doubles. The sums over t run in tiles of SSM_LAYER_NORM_TILE
// positions and within a tile over 8 fixed lanes, so the result does not depend on the CPU's
// vector width.
#define SSM_LAYER_NORM_TILE 256
void ssm_layer_norm_cm_backward_f32(const float *dY, const float *x, const float *w, const double *mean, const double *inv, float *dX,
                                    double *dw, double *db, double *scratch, ptrdiff_t C, ptrdiff_t L);
void ssm_layer_norm_cm_backward_f64(const double *dY, const double *x, const double *w, const double *mean, const double *inv, double *dX,
                                    double *dw, double *db, double *scratch, ptrdiff_t C, ptrdiff_t L);
#endif
