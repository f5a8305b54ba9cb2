// The inner loops of the selective scan (S6): one (batch, channel) row at a time, the state
// held in a local array that stays in registers or L1 for the whole sequence
// (SSMKit/Selective/SelectiveScan.swift orchestrates rows, layouts and threads).
//
// Written in C for the same reason as spectral.h: target_clones builds AVX2 and AVX-512 copies
// beside the baseline, so the loops over the state run 8 or 16 lanes wide with a vectorized
// exponential. Each function exists for float (_f32) and double (_f64).
//
// Semantics (official selective_scan_ref): for t = 0 ..< L,
//   dt_t = softplus(delta_t + delta_bias)  (softplus only when asked; softplus(v) = v above 20)
//   x_t  = exp(dt_t · A) ⊙ x_{t−1} + dt_t · u_t · B_t
//   y_t  = C_t · x_t + D · u_t,   out_t = y_t · silu(z_t) when z is given.
#ifndef SSMKIT_SELECTIVE_H
#define SSMKIT_SELECTIVE_H

#include <stddef.h>

#define SSM_SELECTIVE_ROW(T, SUFFIX)                                                              \
    /* One row of the scan. B_t = b + t·b_step, C_t = c + t·c_step (step N for input-dependent */ \
    /* B and C stored (L, N), step 0 for time-invariant ones). */                                  \
    typedef struct {                                                                              \
        ptrdiff_t length, state;                                                                  \
        const T *u, *delta; /* (L) */                                                             \
        const T *a;         /* (N) */                                                             \
        const T *b;                                                                               \
        ptrdiff_t b_step;                                                                         \
        const T *c;                                                                               \
        ptrdiff_t c_step;                                                                         \
        const T *z;         /* (L) or NULL */                                                     \
        T d_skip, delta_bias;                                                                     \
        int softplus;                                                                             \
        const T *x0;        /* (N) state before t = 0, or NULL for zero */                        \
    } ssm_scan_row_##SUFFIX;                                                                      \
                                                                                                  \
    /* out: (L); x_last: (N) or NULL. work: 3·L scalars. Returns non-zero, having written */      \
    /* nothing, when u, delta or z holds a NaN or an infinity. */                                 \
    int ssm_scan_forward_##SUFFIX(const ssm_scan_row_##SUFFIX *row, T *out, T *x_last, T *work);  \
                                                                                                  \
    /* Gradients of Σ d_out ⊙ out. Written: du, ddelta (L), dz (L, if z), dx0 (N, if non-NULL). */\
    /* Added to: da (N), db at db + t·b_step, dc at dc + t·c_step, *dd, *ddelta_bias. */          \
    /* States are recomputed from checkpoints every `chunk` steps. work: */                       \
    /* ssm_scan_backward_work(L, N, chunk) scalars. Returns non-zero, having written nothing, */  \
    /* when u, delta, z or d_out holds a NaN or an infinity. */                                   \
    int ssm_scan_backward_##SUFFIX(const ssm_scan_row_##SUFFIX *row, const T *d_out, T *du,       \
                                   T *ddelta, T *dz, T *dx0, T *da, T *db, T *dc, T *dd,          \
                                   T *ddelta_bias, ptrdiff_t chunk, T *work);                     \
                                                                                                  \
    /* One decoding step of rows [r0, r1) of B·D (row r = b·D + d): the scan at L = 1 from the */ \
    /* state, x ← exp(dt·A_d) ⊙ x + dt·u·B, out = (C·x + D_d·u)·silu(z), dt = softplus(delta + */  \
    /* delta_bias_d) when softplus. Batch b's group g of B sits at b + b·bc_stride + g·N (C */    \
    /* likewise); channel d reads group d / (D / groups). */                                      \
    typedef struct {                                                                              \
        ptrdiff_t channels, state, groups;                                                        \
        const T *u, *delta; /* (B, D) */                                                          \
        const T *z;         /* (B, D) or NULL */                                                  \
        const T *a;         /* (D, N) */                                                          \
        const T *b, *c;                                                                           \
        ptrdiff_t bc_stride;                                                                      \
        const T *d_skip, *delta_bias; /* (D) or NULL */                                           \
        int softplus;                                                                             \
        T *x;               /* (B, D, N), advanced in place */                                    \
        T *out;             /* (B, D) */                                                          \
    } ssm_step_rows_##SUFFIX;                                                                     \
                                                                                                  \
    /* Allocates nothing; out must not overlap u, delta, z or x. Returns non-zero when u, delta */ \
    /* or z holds a NaN or an infinity in the rows (whose x and out are then partly written). */  \
    int ssm_scan_step_##SUFFIX(const ssm_step_rows_##SUFFIX *step, ptrdiff_t r0, ptrdiff_t r1);    \
                                                                                                  \
    /* count exponentials: out[i] = exp(x[i]), the vectorized exponential the scan uses. */       \
    void ssm_exp_##SUFFIX(const T *x, T *out, ptrdiff_t count);                                   \
                                                                                                  \
    /* GLU's gate half on the same exponential: gate = 1/(1 + exp(−g)), y = a · gate, plus */  \
    /* residual[i] when residual is not NULL. */                                                  \
    void ssm_glu_forward_##SUFFIX(const T *a, const T *g, const T *residual, T *y, T *gate, ptrdiff_t count); \
                                                                                                  \
    /* GLU's backward from the kept gate: da = dy · gate, dg = dy · a · gate · (1 − gate), */  \
    /* written, or added when accumulate is non-zero. */                                          \
    void ssm_glu_backward_##SUFFIX(const T *dy, const T *a, const T *gate, T *da, T *dg, ptrdiff_t count, int accumulate); \
                                                                                                  \
    /* The benchmark bound: Σ_{t,n} exp(dt_t · a_n), the scan's exponentials and nothing else. */ \
    T ssm_exponentials_only_##SUFFIX(const T *dt, const T *a, ptrdiff_t length, ptrdiff_t state);

SSM_SELECTIVE_ROW(float, f32)
SSM_SELECTIVE_ROW(double, f64)

/// Scalars of work a backward row needs.
ptrdiff_t ssm_scan_backward_work(ptrdiff_t length, ptrdiff_t state, ptrdiff_t chunk);

#endif
