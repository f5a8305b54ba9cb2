#ifndef SSMKIT_VANDERMONDE_H
#define SSMKIT_VANDERMONDE_H

#include <stddef.h>

// The Vandermonde sums of one S4D mode z = Ā (SSMKit's S4DKernel), given as z and log z in
// double. Powers z^l come in blocks of `interval` steps: each block starts from an anchor
// z^{l0} in double and its 16 lanes hold z^{l0+j}, j < 16, advanced by z^16 per vector step in
// the element type. Every 16th anchor is an exact exponential, e^{l0·log z} with the product
// l0·log z carried exactly (a fused multiply-add keeps its remainder); the anchors between are
// that one times z^{interval·i}, a running product of the exact z^interval, so an anchor is
// within 18 double roundings of the exact power at any l.
//
// Forward: row[l] += 2·Re(w·z^l) for l < L.
void ssm_vandermonde_f32(float *row, ptrdiff_t L, double w_re, double w_im, double z_re, double z_im, double log_re, double log_im,
                         ptrdiff_t interval);
void ssm_vandermonde_f64(double *row, ptrdiff_t L, double w_re, double w_im, double z_re, double z_im, double log_re, double log_im,
                         ptrdiff_t interval);

// Adjoint: G = Σ_{l<L} dK[l]·z^l and G' = Σ_{l<L−1} dK[l+1]·(l+1)·z^l, written to
// out = (Re G, Im G, Re G', Im G'). Each block's lane sums are added in double, lane by
// lane, and the lanes summed at the end.
void ssm_vandermonde_adjoint_f32(const float *dK, ptrdiff_t L, double z_re, double z_im, double log_re, double log_im, ptrdiff_t interval,
                                 double *out);
void ssm_vandermonde_adjoint_f64(const double *dK, ptrdiff_t L, double z_re, double z_im, double log_re, double log_im,
                                 ptrdiff_t interval, double *out);

// z^l = e^{l·log z} as above (the exact anchor), for the tests and the recurrence.
void ssm_anchored_power(double log_re, double log_im, ptrdiff_t l, double *out_re, double *out_im);
#endif
