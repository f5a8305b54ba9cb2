// Pointwise products of interleaved complex half spectra: the only arithmetic the FFT
// convolution does between transforms (SSMKit/Convolution/SpectralProducts.swift).
//
// Written in C so that the compiler can build AVX2 and AVX-512 clones beside the baseline SSE2
// code and pick one at load time (target_clones, an ifunc): Swift has no per-function target
// attribute, and the package must not force -march flags on its users. Each array holds `count`
// complex values as (re, im) pairs; arrays must not overlap except where a function says so.
#ifndef SSMKIT_SPECTRAL_H
#define SSMKIT_SPECTRAL_H

#include <stddef.h>


/// a[i] *= b[i]
void ssm_spectral_multiply_inplace_f32(float *a, const float *b, ptrdiff_t count);
void ssm_spectral_multiply_inplace_f64(double *a, const double *b, ptrdiff_t count);

/// out[i] = a[i] * b[i]
void ssm_spectral_multiply_f32(const float *a, const float *b, float *out, ptrdiff_t count);
void ssm_spectral_multiply_f64(const double *a, const double *b, double *out, ptrdiff_t count);

/// out[i] = conj(a[i]) * b[i], or out[i] += … when accumulate is non-zero
void ssm_spectral_multiply_conjugate_f32(const float *a, const float *b, float *out, ptrdiff_t count, int accumulate);
void ssm_spectral_multiply_conjugate_f64(const double *a, const double *b, double *out, ptrdiff_t count, int accumulate);

/// Real rows (not spectra): out[i] = a[i] · b[i]; out[i] += a[i]; out[i] += a[i] · scale (the
/// product rounded before the sum).
void ssm_row_multiply_f32(const float *a, const float *b, float *out, ptrdiff_t count);
void ssm_row_multiply_f64(const double *a, const double *b, double *out, ptrdiff_t count);
void ssm_row_add_f32(float *out, const float *a, ptrdiff_t count);
void ssm_row_add_f64(double *out, const double *a, ptrdiff_t count);
void ssm_row_add_scaled_f32(float *out, const float *a, float scale, ptrdiff_t count);
void ssm_row_add_scaled_f64(double *out, const double *a, double scale, ptrdiff_t count);

#endif
