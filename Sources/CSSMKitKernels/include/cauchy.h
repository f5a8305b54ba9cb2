// The Cauchy sums of the S4 (DPLR) kernel (SSMKit/Kernels/S4Kernel.swift), in double, with
// AVX2 / AVX-512 clones like the spectral products.
#ifndef SSMKIT_CAUCHY_H
#define SSMKIT_CAUCHY_H

#include <stddef.h>

/// For each node j < nodes and pair p < pairs:
///     r[j·pairs + p] = g_j · Σ_n weight_g[p·modes + n] / q_jn − Σ_n weight_one[p·modes + n] / q_jn,
///     q_jn = (g_j − λ_n)(g_j − conj λ_n) = g_j² − 2·Re(λ_n)·g_j + |λ_n|²,
/// with g, r complex as split real / imaginary arrays. Nodes are taken four at a time so that
/// each weight is loaded once per block; the loops over modes are vectorized.
/// work: 8·modes doubles.
void ssm_cauchy_sums_f64(ptrdiff_t nodes, const double *g_re, const double *g_im, ptrdiff_t modes,
                         const double *lambda_re, const double *lambda_abs2, ptrdiff_t pairs,
                         const double *weight_g, const double *weight_one, double *r_re, double *r_im,
                         double *work);

// The adjoint of the S4 kernel (SSMKit/Kernels/S4Kernel+Backward.swift), for one channel, in the
// arithmetic of swift-numerics' Complex<Double> exactly: a product is (ac − bd, ad + bc), 1/w is
// (1·a − 0·b, 1·b + 0·a) with (a, b) = conj(w)/|w|² (rescaled as swift-numerics does when |w|² is
// not a normal number), every sum runs in the order a plain loop takes, and nothing is fused. So
// the result has the bits of that loop on every CPU. Complex arrays are split real / imaginary;
// `stride`, a multiple of 8 and ≥ modes, is the row length of the mode-indexed arrays. The
// accumulation reads the rows' tails (v's must be set, to zeros; the sums write inv's) and writes
// u, w, x_lambda and y_lambda through `stride`, so each of those holds `stride` values per row.
//
// Sums, for nodes j < nodes, modes n < modes, pairs p < pairs, v: (pairs, stride):
//     inv[j·stride + n] = 1/(g_j − λ_n),  inv_conj[j·stride + n] = 1/(g_j − conj λ_n)
//     r[j·pairs + p]  = Σ_n v_pn·inv_jn + conj(v_pn)·inv_conj_jn
//     dg[j·pairs + p] = Σ_n (v_pn·inv_jn)·inv_jn + (conj(v_pn)·inv_conj_jn)·inv_conj_jn
// work: 4·8·stride doubles.
void ssm_cauchy_adjoint_sums_f64(ptrdiff_t nodes, const double *g_re, const double *g_im, ptrdiff_t modes, ptrdiff_t stride,
                                 const double *lambda_re, const double *lambda_im, ptrdiff_t pairs, const double *v_re,
                                 const double *v_im, double *inv_re, double *inv_im, double *inv_conj_re, double *inv_conj_im,
                                 double *r_re, double *r_im, double *dg_re, double *dg_im, double *work);

// Accumulation, from zero, over nodes j in order and within a node over p in order, for each n:
//     u[p·stride + n] += e_jp·inv_jn,  w[p·stride + n] += e_jp·inv_conj_jn,
//     x_lambda[n] += ((e_jp·v_pn)·inv_jn)·inv_jn,  y_lambda[n] += ((e_jp·conj v_pn)·inv_conj_jn)·inv_conj_jn,
// e: (nodes, pairs). The outputs are overwritten.
void ssm_cauchy_adjoint_accumulate_f64(ptrdiff_t nodes, ptrdiff_t stride, ptrdiff_t pairs, const double *e_re, const double *e_im,
                                       const double *v_re, const double *v_im, const double *inv_re, const double *inv_im,
                                       const double *inv_conj_re, const double *inv_conj_im, double *u_re, double *u_im,
                                       double *w_re, double *w_im, double *x_lambda_re, double *x_lambda_im,
                                       double *y_lambda_re, double *y_lambda_im);

#endif
