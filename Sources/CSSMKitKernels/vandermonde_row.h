// The body of vandermonde.c, instantiated once per precision: REAL is float or double, FN(name)
// appends the precision suffix, VEC is a 16-lane vector of REAL and DVEC one of double.

// The lanes z^j (j < 16) rounded once from double, and the step z^16.
static inline void FN(lanes)(double z_re, double z_im, VEC *lane_re, VEC *lane_im, REAL *step_re, REAL *step_im) {
    double p_re = 1, p_im = 0;
    for (int j = 0; j < 16; j++) {
        (*lane_re)[j] = (REAL)p_re;
        (*lane_im)[j] = (REAL)p_im;
        double t = p_re * z_re - p_im * z_im;
        p_im = p_re * z_im + p_im * z_re;
        p_re = t;
    }
    *step_re = (REAL)p_re;
    *step_im = (REAL)p_im;
}

SSM_CLONES void FN(ssm_vandermonde)(REAL *restrict row, ptrdiff_t L, double w_re, double w_im, double z_re, double z_im, double log_re,
                                    double log_im, ptrdiff_t interval) {
    VEC lane_re, lane_im;
    REAL step_re, step_im;
    FN(lanes)(z_re, z_im, &lane_re, &lane_im, &step_re, &step_im);
    ssm_anchors anchors;
    ssm_anchors_init(&anchors, log_re, log_im, interval);
    for (ptrdiff_t l0 = 0; l0 < L; l0 += interval) {
        double a_re, a_im;
        ssm_anchors_next(&anchors, &a_re, &a_im);
        const double wa_re = w_re * a_re - w_im * a_im, wa_im = w_re * a_im + w_im * a_re;
        const REAL ar = (REAL)wa_re, ai = (REAL)wa_im;
        // p = anchor · z^j per lane, doubled (K̄ = 2·Re).
        VEC p_re = (lane_re * ar - lane_im * ai) * 2, p_im = (lane_re * ai + lane_im * ar) * 2;
        const ptrdiff_t end = L < l0 + interval ? L : l0 + interval;
        ptrdiff_t l = l0;
        for (; l + 16 <= end; l += 16) {
            VEC r;
            memcpy(&r, row + l, sizeof r);
            r += p_re;
            memcpy(row + l, &r, sizeof r);
            const VEC t = p_re * step_re - p_im * step_im;
            p_im = p_re * step_im + p_im * step_re;
            p_re = t;
        }
        for (int j = 0; l + j < end; j++) row[l + j] += p_re[j];
    }
}

SSM_CLONES void FN(ssm_vandermonde_adjoint)(const REAL *restrict dK, ptrdiff_t L, double z_re, double z_im, double log_re, double log_im,
                                            ptrdiff_t interval, double *restrict out) {
    VEC lane_re, lane_im, offsets;
    REAL step_re, step_im;
    FN(lanes)(z_re, z_im, &lane_re, &lane_im, &step_re, &step_im);
    for (int j = 0; j < 16; j++) offsets[j] = (REAL)(j + 1);
    ssm_anchors anchors;
    ssm_anchors_init(&anchors, log_re, log_im, interval);
    // Per block, the lane sums in REAL are added lane by lane into double vectors (no sum across
    // lanes until the end); the tails into double scalars.
    DVEC tg_re = {0}, tg_im = {0}, th_re = {0}, th_im = {0};
    double g_re = 0, g_im = 0, h_re = 0, h_im = 0;
    for (ptrdiff_t l0 = 0; l0 < L; l0 += interval) {
        double a_re, a_im;
        ssm_anchors_next(&anchors, &a_re, &a_im);
        const REAL ar = (REAL)a_re, ai = (REAL)a_im;
        VEC p_re = lane_re * ar - lane_im * ai, p_im = lane_re * ai + lane_im * ar;
        VEC sg_re = {0}, sg_im = {0}, sh_re = {0}, sh_im = {0};
        const ptrdiff_t end = L < l0 + interval ? L : l0 + interval;
        ptrdiff_t l = l0;
        // Full vectors while dK[l + 1 … l + 16] exists too.
        for (; l + 16 <= end && l + 17 <= L; l += 16) {
            VEC d, next;
            memcpy(&d, dK + l, sizeof d);
            memcpy(&next, dK + l + 1, sizeof next);
            next *= offsets + (REAL)l;
            sg_re += d * p_re;
            sg_im += d * p_im;
            sh_re += next * p_re;
            sh_im += next * p_im;
            const VEC t = p_re * step_re - p_im * step_im;
            p_im = p_re * step_im + p_im * step_re;
            p_re = t;
        }
        if (l > l0) {
            tg_re += __builtin_convertvector(sg_re, DVEC), tg_im += __builtin_convertvector(sg_im, DVEC);
            th_re += __builtin_convertvector(sh_re, DVEC), th_im += __builtin_convertvector(sh_im, DVEC);
        }
        for (int j = 0; l + j < end; j++) {
            const double pr = (double)p_re[j], pi = (double)p_im[j], d = (double)dK[l + j];
            g_re += pr * d, g_im += pi * d;
            if (l + j + 1 < L) {
                const double e = (double)dK[l + j + 1] * (double)(l + j + 1);
                h_re += pr * e, h_im += pi * e;
            }
        }
    }
    for (int j = 0; j < 16; j++) g_re += tg_re[j], g_im += tg_im[j], h_re += th_re[j], h_im += th_im[j];
    out[0] = g_re, out[1] = g_im, out[2] = h_re, out[3] = h_im;
}
