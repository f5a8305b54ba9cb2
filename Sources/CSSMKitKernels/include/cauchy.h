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

#endif
