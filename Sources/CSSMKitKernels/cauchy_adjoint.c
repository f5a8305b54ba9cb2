#include <float.h>
#include <math.h>

#include "cauchy.h"
#include "clones.h"
#include "lanes.h"

// No fused multiply-adds: the Swift arithmetic these loops reproduce rounds every product and
// sum on its own (see cauchy.h).
#pragma STDC FP_CONTRACT OFF

enum { LANES = 8 };

typedef long long ssm_v8l __attribute__((vector_size(64)));

// (zr + i·zi) / (wr + i·wi) as swift-numerics divides: z·(conj(w)/|w|²), with w and z first
// scaled by a power of two when |w|² is not a normal number.
static void divide(double zr, double zi, double wr, double wi, double *re, double *im) {
    double len2 = wr * wr + wi * wi;
    if (!isnormal(len2)) {
        if (wr == 0 && wi == 0) {
            *re = INFINITY, *im = 0;
            return;
        }
        if (!isfinite(wr) || !isfinite(wi)) {
            *re = 0, *im = 0;
            return;
        }
        const double magnitude = fmax(fabs(wr), fabs(wi));
        if (magnitude < DBL_MIN) {
            const double s = 1 / (2 * DBL_MIN);
            divide(zr * s, zi * s, wr * s, wi * s, re, im);
            return;
        }
        const double s = ldexp(1, -3 * ilogb(magnitude) / 4);
        wr *= s, wi *= s, zr *= s, zi *= s;
        len2 = wr * wr + wi * wi;
    }
    const double a = wr / len2, b = -wi / len2;
    *re = zr * a - zi * b;
    *im = zr * b + zi * a;
}

// 1/w in eight lanes (macros: a vector argument would change the ABI of the baseline clone): the
// fast path of divide for z = 1, and divide itself in a lane whose |w|² is not normal.
#define INVERSE8(wr, wi, re, im)                                                                  \
    do {                                                                                          \
        const ssm_v8d len2_ = (wr) * (wr) + (wi) * (wi);                                          \
        const ssm_v8d a_ = (wr) / len2_, b_ = -(wi) / len2_;                                      \
        (re) = 1.0 * a_ - 0.0 * b_;                                                               \
        (im) = 1.0 * b_ + 0.0 * a_;                                                               \
        const ssm_v8l normal_ = (len2_ >= DBL_MIN) & (len2_ <= DBL_MAX);                          \
        long long all_ = -1;                                                                      \
        for (int k_ = 0; k_ < LANES; k_++) all_ &= normal_[k_];                                   \
        if (!all_) {                                                                              \
            for (int k_ = 0; k_ < LANES; k_++) {                                                  \
                if (normal_[k_]) continue;                                                        \
                double r_, i_;                                                                    \
                divide(1, 0, (wr)[k_], (wi)[k_], &r_, &i_);                                       \
                (re)[k_] = r_, (im)[k_] = i_;                                                     \
            }                                                                                     \
        }                                                                                         \
    } while (0)

// (ar + i·ai)(br + i·bi) = (ar·br − ai·bi) + i·(ar·bi + ai·br).
#define MULTIPLY8(ar, ai, br, bi, cr, ci)                                                         \
    do {                                                                                          \
        const ssm_v8d r_ = (ar) * (br) - (ai) * (bi), i_ = (ar) * (bi) + (ai) * (br);             \
        (cr) = r_, (ci) = i_;                                                                     \
    } while (0)

#define LOAD8(p) (*(const ssm_v8d_u *)(p))
#define STORE8(p, v) (*(ssm_v8d_u *)(p) = (v))

// Eight nodes per lane vector, each lane summing over the modes in order.
SSM_CLONES void ssm_cauchy_adjoint_sums_f64(ptrdiff_t nodes, const double *restrict g_re, const double *restrict g_im,
                                            ptrdiff_t modes, ptrdiff_t stride, const double *restrict lambda_re,
                                            const double *restrict lambda_im, ptrdiff_t pairs, const double *restrict v_re,
                                            const double *restrict v_im, double *restrict inv_re, double *restrict inv_im,
                                            double *restrict inv_conj_re, double *restrict inv_conj_im, double *restrict r_re,
                                            double *restrict r_im, double *restrict dg_re, double *restrict dg_im,
                                            double *restrict work) {
    // The block's inverses, mode-major: tile[n·LANES + k] for node j0 + k.
    double *restrict t_re = work, *restrict t_im = work + LANES * stride;
    double *restrict tc_re = work + 2 * LANES * stride, *restrict tc_im = work + 3 * LANES * stride;
    for (ptrdiff_t j0 = 0; j0 < nodes; j0 += LANES) {
        const ptrdiff_t count = nodes - j0 < LANES ? nodes - j0 : LANES;
        ssm_v8d gr, gi;
        for (int k = 0; k < LANES; k++) {
            const ptrdiff_t j = j0 + (k < count ? k : count - 1);  // the last node again in unused lanes
            gr[k] = g_re[j], gi[k] = g_im[j];
        }
        for (ptrdiff_t n = 0; n < modes; n++) {
            const double lr = lambda_re[n], li = lambda_im[n];
            // g − λ and g − conj λ.
            const ssm_v8d xr = gr - lr, xi = gi - li, yi = gi - (-li);
            ssm_v8d ar, ai, br, bi;
            INVERSE8(xr, xi, ar, ai);
            INVERSE8(xr, yi, br, bi);
            STORE8(t_re + n * LANES, ar), STORE8(t_im + n * LANES, ai);
            STORE8(tc_re + n * LANES, br), STORE8(tc_im + n * LANES, bi);
            for (ptrdiff_t k = 0; k < count; k++) {
                const ptrdiff_t i = (j0 + k) * stride + n;
                inv_re[i] = ar[k], inv_im[i] = ai[k], inv_conj_re[i] = br[k], inv_conj_im[i] = bi[k];
            }
        }
        for (ptrdiff_t k = 0; k < count; k++) {
            for (ptrdiff_t n = modes; n < stride; n++) {
                const ptrdiff_t i = (j0 + k) * stride + n;
                inv_re[i] = 0, inv_im[i] = 0, inv_conj_re[i] = 0, inv_conj_im[i] = 0;
            }
        }
        for (ptrdiff_t p = 0; p < pairs; p++) {
            ssm_v8d rr = {0}, ri = {0}, dr = {0}, di = {0};
            for (ptrdiff_t n = 0; n < modes; n++) {
                const double vr = v_re[p * stride + n], vi = v_im[p * stride + n];
                const ssm_v8d ar = LOAD8(t_re + n * LANES), ai = LOAD8(t_im + n * LANES);
                const ssm_v8d br = LOAD8(tc_re + n * LANES), bi = LOAD8(tc_im + n * LANES);
                ssm_v8d t1r, t1i, t2r, t2i, d1r, d1i, d2r, d2i;
                MULTIPLY8(vr, vi, ar, ai, t1r, t1i);  // the scalars stand for all eight lanes
                MULTIPLY8(vr, -vi, br, bi, t2r, t2i);
                rr = rr + t1r + t2r, ri = ri + t1i + t2i;
                MULTIPLY8(t1r, t1i, ar, ai, d1r, d1i);
                MULTIPLY8(t2r, t2i, br, bi, d2r, d2i);
                dr = dr + d1r + d2r, di = di + d1i + d2i;
            }
            for (ptrdiff_t k = 0; k < count; k++) {
                const ptrdiff_t i = (j0 + k) * pairs + p;
                r_re[i] = rr[k], r_im[i] = ri[k], dg_re[i] = dr[k], dg_im[i] = di[k];
            }
        }
    }
}

// Eight modes per lane vector, the nodes and pairs in order.
SSM_CLONES void ssm_cauchy_adjoint_accumulate_f64(ptrdiff_t nodes, ptrdiff_t stride, ptrdiff_t pairs, const double *restrict e_re,
                                                  const double *restrict e_im, const double *restrict v_re,
                                                  const double *restrict v_im, const double *restrict inv_re,
                                                  const double *restrict inv_im, const double *restrict inv_conj_re,
                                                  const double *restrict inv_conj_im, double *restrict u_re, double *restrict u_im,
                                                  double *restrict w_re, double *restrict w_im, double *restrict x_lambda_re,
                                                  double *restrict x_lambda_im, double *restrict y_lambda_re,
                                                  double *restrict y_lambda_im) {
    const ssm_v8d zero = {0};
    for (ptrdiff_t n0 = 0; n0 < stride; n0 += LANES) {
        for (ptrdiff_t p = 0; p < pairs; p++) {
            STORE8(u_re + p * stride + n0, zero), STORE8(u_im + p * stride + n0, zero);
            STORE8(w_re + p * stride + n0, zero), STORE8(w_im + p * stride + n0, zero);
        }
        ssm_v8d xr = zero, xi = zero, yr = zero, yi = zero;
        for (ptrdiff_t j = 0; j < nodes; j++) {
            const ssm_v8d ar = LOAD8(inv_re + j * stride + n0), ai = LOAD8(inv_im + j * stride + n0);
            const ssm_v8d br = LOAD8(inv_conj_re + j * stride + n0), bi = LOAD8(inv_conj_im + j * stride + n0);
            for (ptrdiff_t p = 0; p < pairs; p++) {
                const double er = e_re[j * pairs + p], ei = e_im[j * pairs + p];
                const ssm_v8d vr = LOAD8(v_re + p * stride + n0), vi = LOAD8(v_im + p * stride + n0);
                ssm_v8d tr, ti, qr, qi;
                MULTIPLY8(er, ei, ar, ai, tr, ti);
                STORE8(u_re + p * stride + n0, LOAD8(u_re + p * stride + n0) + tr);
                STORE8(u_im + p * stride + n0, LOAD8(u_im + p * stride + n0) + ti);
                MULTIPLY8(er, ei, br, bi, tr, ti);
                STORE8(w_re + p * stride + n0, LOAD8(w_re + p * stride + n0) + tr);
                STORE8(w_im + p * stride + n0, LOAD8(w_im + p * stride + n0) + ti);
                MULTIPLY8(er, ei, vr, vi, qr, qi);
                MULTIPLY8(qr, qi, ar, ai, tr, ti);
                MULTIPLY8(tr, ti, ar, ai, qr, qi);
                xr = xr + qr, xi = xi + qi;
                MULTIPLY8(er, ei, vr, -vi, qr, qi);
                MULTIPLY8(qr, qi, br, bi, tr, ti);
                MULTIPLY8(tr, ti, br, bi, qr, qi);
                yr = yr + qr, yi = yi + qi;
            }
        }
        STORE8(x_lambda_re + n0, xr), STORE8(x_lambda_im + n0, xi);
        STORE8(y_lambda_re + n0, yr), STORE8(y_lambda_im + n0, yi);
    }
}
