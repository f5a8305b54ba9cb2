// The inner loops of recurrent (step) mode: one (batch, channel) row stepped over `steps`
// inputs, its state kept in caller-owned arrays (split real / imaginary parts) and in
// registers between steps (SSMKit/Recurrence/StepEngine.swift owns the rows and threads).
// Cloned for AVX2 / AVX-512 (clones.h); each function exists for float and double.
//
// Every function reads u[t·u_stride] for t < steps and writes the C outputs of step t to
// y[c·y_copy + t·y_stride] = scale·Re(Σ_n c[c][n] x_t[n]) + d[c]·u_t (d may be NULL).
#ifndef SSMKIT_RECURRENCE_H
#define SSMKIT_RECURRENCE_H

#include <stddef.h>

#define SSM_RECURRENCE(T, SUFFIX)                                                                 \
    typedef struct {                                                                              \
        ptrdiff_t size;      /* complex state entries n */                                        \
        ptrdiff_t copies;    /* output copies C */                                                \
        const T *c_re, *c_im; /* (C, n) */                                                        \
        ptrdiff_t c_stride;  /* distance between copies in c */                                   \
        const T *d;          /* (C) with stride d_stride, or NULL */                              \
        ptrdiff_t d_stride;                                                                       \
        T scale;             /* 2 for a half state (conjugate pairs), 1 for a full one */         \
        const T *u;                                                                               \
        ptrdiff_t u_stride;                                                                       \
        T *y;                                                                                     \
        ptrdiff_t y_copy, y_stride;                                                               \
        ptrdiff_t steps;                                                                          \
    } ssm_step_io_##SUFFIX;                                                                       \
                                                                                                  \
    /* Diagonal: x ← μ ⊙ x + b̄ u. */                                                              \
    void ssm_step_diagonal_##SUFFIX(const ssm_step_io_##SUFFIX *io, const T *mu_re, const T *mu_im, \
                                    const T *b_re, const T *b_im, T *x_re, T *x_im);              \
                                                                                                  \
    /* DPLR bilinear on the half state, rank R (the O(N·R) Woodbury step):                     */ \
    /*   z = plus ⊙ x − Σ_r p_r (2 Re p_r* x) + two_b u;  w = dinv ⊙ z;                        */ \
    /*   x ← w − dinv ⊙ Σ_r p_r k_r,  k = inverse · (2 Re p* w)   (inverse: R × R, row-major) */ \
    /* work: 2n scalars.                                                                        */ \
    void ssm_step_linear_##SUFFIX(const ssm_step_io_##SUFFIX *io, ptrdiff_t rank, const T *plus_re,  \
                                  const T *plus_im, const T *dinv_re, const T *dinv_im,           \
                                  const T *p_re, const T *p_im, const T *two_b_re,                \
                                  const T *two_b_im, const T *inverse, T *x_re, T *x_im, T *work); \
                                                                                                  \
    /* Dense: x ← Ā x + b̄ u with Ā (n × n, row-major, split parts). work: 2n scalars. */          \
    void ssm_step_dense_##SUFFIX(const ssm_step_io_##SUFFIX *io, const T *a_re, const T *a_im,    \
                                 const T *b_re, const T *b_im, T *x_re, T *x_im, T *work);

SSM_RECURRENCE(float, f32)
SSM_RECURRENCE(double, f64)

#endif
