// The body of recurrence.c, instantiated per precision (REAL, FN, IO).

// y outputs of one step from the state.
static inline __attribute__((always_inline)) void FN(outputs)(const IO *io, ptrdiff_t t, const REAL *restrict x_re,
                                                              const REAL *restrict x_im, REAL u) {
    const ptrdiff_t n = io->size;
    for (ptrdiff_t c = 0; c < io->copies; c++) {
        const REAL *restrict cr = io->c_re + c * io->c_stride, *restrict ci = io->c_im + c * io->c_stride;
        REAL sum = 0;
        {
#pragma clang fp reassociate(on)
            for (ptrdiff_t i = 0; i < n; i++) sum += cr[i] * x_re[i] - ci[i] * x_im[i];
        }
        io->y[c * io->y_copy + t * io->y_stride] = io->scale * sum + (io->d ? io->d[c * io->d_stride] * u : 0);
    }
}

SSM_CLONES void FN(ssm_step_diagonal)(const IO *io, const REAL *restrict mu_re, const REAL *restrict mu_im,
                                      const REAL *restrict b_re, const REAL *restrict b_im, REAL *restrict x_re,
                                      REAL *restrict x_im) {
    const ptrdiff_t n = io->size;
    for (ptrdiff_t t = 0; t < io->steps; t++) {
        const REAL u = io->u[t * io->u_stride];
        for (ptrdiff_t i = 0; i < n; i++) {
            REAL xr = x_re[i], xi = x_im[i];
            x_re[i] = mu_re[i] * xr - mu_im[i] * xi + b_re[i] * u;
            x_im[i] = mu_re[i] * xi + mu_im[i] * xr + b_im[i] * u;
        }
        FN(outputs)(io, t, x_re, x_im, u);
    }
}

// 2·Re Σ conj(p) · x
static inline __attribute__((always_inline)) REAL FN(real_dot)(ptrdiff_t n, const REAL *restrict p_re,
                                                               const REAL *restrict p_im, const REAL *restrict x_re,
                                                               const REAL *restrict x_im) {
#pragma clang fp reassociate(on)
    REAL sum = 0;
    for (ptrdiff_t i = 0; i < n; i++) sum += p_re[i] * x_re[i] + p_im[i] * x_im[i];
    return 2 * sum;
}

SSM_CLONES void FN(ssm_step_linear)(const IO *io, ptrdiff_t rank, const REAL *restrict plus_re,
                                    const REAL *restrict plus_im, const REAL *restrict dinv_re,
                                    const REAL *restrict dinv_im, const REAL *restrict p_re, const REAL *restrict p_im,
                                    const REAL *restrict two_b_re, const REAL *restrict two_b_im,
                                    const REAL *restrict inverse, REAL *restrict x_re, REAL *restrict x_im,
                                    REAL *restrict work) {
    const ptrdiff_t n = io->size, R = rank;
    REAL *restrict w_re = work, *restrict w_im = work + n;
    REAL px[R], k[R];
    for (ptrdiff_t t = 0; t < io->steps; t++) {
        const REAL u = io->u[t * io->u_stride];
        for (ptrdiff_t r = 0; r < R; r++) px[r] = FN(real_dot)(n, p_re + r * n, p_im + r * n, x_re, x_im);
        // z = plus ⊙ x + 2B u − Σ_r p_r px_r, then w = dinv ⊙ z.
        for (ptrdiff_t i = 0; i < n; i++) {
            REAL zr = plus_re[i] * x_re[i] - plus_im[i] * x_im[i] + two_b_re[i] * u;
            REAL zi = plus_re[i] * x_im[i] + plus_im[i] * x_re[i] + two_b_im[i] * u;
            for (ptrdiff_t r = 0; r < R; r++) {
                zr -= p_re[r * n + i] * px[r];
                zi -= p_im[r * n + i] * px[r];
            }
            w_re[i] = dinv_re[i] * zr - dinv_im[i] * zi;
            w_im[i] = dinv_re[i] * zi + dinv_im[i] * zr;
        }
        for (ptrdiff_t r = 0; r < R; r++) px[r] = FN(real_dot)(n, p_re + r * n, p_im + r * n, w_re, w_im);
        for (ptrdiff_t r = 0; r < R; r++) {
            REAL s = 0;
            for (ptrdiff_t q = 0; q < R; q++) s += inverse[r * R + q] * px[q];
            k[r] = s;
        }
        // x = w − dinv ⊙ Σ_r p_r k_r
        for (ptrdiff_t i = 0; i < n; i++) {
            REAL cr = 0, ci = 0;
            for (ptrdiff_t r = 0; r < R; r++) {
                cr += p_re[r * n + i] * k[r];
                ci += p_im[r * n + i] * k[r];
            }
            x_re[i] = w_re[i] - (dinv_re[i] * cr - dinv_im[i] * ci);
            x_im[i] = w_im[i] - (dinv_re[i] * ci + dinv_im[i] * cr);
        }
        FN(outputs)(io, t, x_re, x_im, u);
    }
}

SSM_CLONES void FN(ssm_step_dense)(const IO *io, const REAL *restrict a_re, const REAL *restrict a_im,
                                   const REAL *restrict b_re, const REAL *restrict b_im, REAL *restrict x_re,
                                   REAL *restrict x_im, REAL *restrict work) {
    const ptrdiff_t n = io->size;
    REAL *restrict v_re = work, *restrict v_im = work + n;
    for (ptrdiff_t t = 0; t < io->steps; t++) {
        const REAL u = io->u[t * io->u_stride];
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL *restrict ar = a_re + i * n, *restrict ai = a_im + i * n;
            REAL sr = 0, si = 0;
            {
#pragma clang fp reassociate(on)
                for (ptrdiff_t j = 0; j < n; j++) {
                    sr += ar[j] * x_re[j] - ai[j] * x_im[j];
                    si += ar[j] * x_im[j] + ai[j] * x_re[j];
                }
            }
            v_re[i] = sr + b_re[i] * u;
            v_im[i] = si + b_im[i] * u;
        }
        for (ptrdiff_t i = 0; i < n; i++) {
            x_re[i] = v_re[i];
            x_im[i] = v_im[i];
        }
        FN(outputs)(io, t, x_re, x_im, u);
    }
}
