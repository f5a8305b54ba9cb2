#include "vandermonde.h"

#include <math.h>
#include <string.h>

#include "clones.h"

// Products and sums round one at a time (no contraction), as the Swift reference in the tests
// does; the one fused multiply-add is the explicit fma() that recovers a product's remainder.
#pragma STDC FP_CONTRACT OFF

void ssm_anchored_power(double log_re, double log_im, ptrdiff_t l, double *out_re, double *out_im) {
    if (l == 0) {
        *out_re = 1, *out_im = 0;
        return;
    }
    const double n = (double)l, re = n * log_re, im = n * log_im;
    if (!isfinite(re) || !isfinite(im)) {
        // A power that under- or overflows: the plain exponential of the rounded product.
        const double m = exp(re);
        *out_re = m * cos(im), *out_im = m * sin(im);
        return;
    }
    // e^{p + e} ≈ e^p·(1 + e), cos(p + e) ≈ cos p − e·sin p, sin(p + e) ≈ sin p + e·cos p for the
    // rounded product p and its remainder e (|e| ≤ ulp(p)/2: the dropped terms are below rounding).
    const double re_rem = fma(n, log_re, -re), im_rem = fma(n, log_im, -im);
    const double m = exp(re) * (1 + re_rem), c = cos(im), s = sin(im);
    *out_re = m * (c - im_rem * s), *out_im = m * (s + im_rem * c);
}

// The anchors z^{i·interval}, i = 0, 1, …: an exact power every 16, products of z^interval between.
typedef struct {
    double log_re, log_im, step_re, step_im, exact_re, exact_im, off_re, off_im;
    ptrdiff_t interval, block;
} ssm_anchors;

static inline void ssm_anchors_init(ssm_anchors *a, double log_re, double log_im, ptrdiff_t interval) {
    a->log_re = log_re, a->log_im = log_im, a->interval = interval, a->block = 0;
    ssm_anchored_power(log_re, log_im, interval, &a->step_re, &a->step_im);
    a->exact_re = 1, a->exact_im = 0, a->off_re = 1, a->off_im = 0;
}

static inline void ssm_anchors_next(ssm_anchors *a, double *re, double *im) {
    if (a->block % 16 == 0) {
        ssm_anchored_power(a->log_re, a->log_im, a->block * a->interval, &a->exact_re, &a->exact_im);
        a->off_re = 1, a->off_im = 0;
    } else {
        const double t = a->off_re * a->step_re - a->off_im * a->step_im;
        a->off_im = a->off_re * a->step_im + a->off_im * a->step_re;
        a->off_re = t;
    }
    a->block++;
    *re = a->exact_re * a->off_re - a->exact_im * a->off_im;
    *im = a->exact_re * a->off_im + a->exact_im * a->off_re;
}

typedef float ssm_vandermonde_v16f __attribute__((vector_size(64)));
typedef double ssm_vandermonde_v16d __attribute__((vector_size(128)));

#define REAL float
#define VEC ssm_vandermonde_v16f
#define DVEC ssm_vandermonde_v16d
#define FN(name) name##_f32
#include "vandermonde_row.h"
#undef REAL
#undef VEC
#undef DVEC
#undef FN

#define REAL double
#define VEC ssm_vandermonde_v16d
#define DVEC ssm_vandermonde_v16d
#define FN(name) name##_f64
#include "vandermonde_row.h"
#undef REAL
#undef VEC
#undef DVEC
#undef FN
