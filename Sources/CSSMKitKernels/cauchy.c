#include "cauchy.h"

#include "clones.h"

enum { BLOCK = 4 };

SSM_CLONES void ssm_cauchy_sums_f64(ptrdiff_t nodes, const double *restrict g_re, const double *restrict g_im,
                                    ptrdiff_t modes, const double *restrict lambda_re,
                                    const double *restrict lambda_abs2, ptrdiff_t pairs,
                                    const double *restrict weight_g, const double *restrict weight_one,
                                    double *restrict r_re, double *restrict r_im, double *restrict work) {
    double *restrict w_re = work, *restrict w_im = work + BLOCK * modes;  // 1/q for a block of nodes
    for (ptrdiff_t j0 = 0; j0 < nodes; j0 += BLOCK) {
        const ptrdiff_t count = nodes - j0 < BLOCK ? nodes - j0 : BLOCK;
        for (ptrdiff_t b = 0; b < count; b++) {
            const double gr = g_re[j0 + b], gi = g_im[j0 + b];
            const double g2r = gr * gr - gi * gi, g2i = 2 * gr * gi;
            double *restrict wr = w_re + b * modes, *restrict wi = w_im + b * modes;
            for (ptrdiff_t n = 0; n < modes; n++) {
                const double qr = g2r - 2 * lambda_re[n] * gr + lambda_abs2[n];
                const double qi = g2i - 2 * lambda_re[n] * gi;
                const double inv = 1 / (qr * qr + qi * qi);
                wr[n] = qr * inv;
                wi[n] = -qi * inv;
            }
        }
        for (ptrdiff_t p = 0; p < pairs; p++) {
            const double *restrict wg = weight_g + p * modes, *restrict wo = weight_one + p * modes;
            double sgr[BLOCK] = {0}, sgi[BLOCK] = {0}, sor[BLOCK] = {0}, soi[BLOCK] = {0};
            if (count == BLOCK) {
                // Each weight is loaded once for the four nodes.
#pragma clang fp reassociate(on)
                for (ptrdiff_t n = 0; n < modes; n++) {
                    for (int b = 0; b < BLOCK; b++) {
                        sgr[b] += w_re[b * modes + n] * wg[n];
                        sgi[b] += w_im[b * modes + n] * wg[n];
                        sor[b] += w_re[b * modes + n] * wo[n];
                        soi[b] += w_im[b * modes + n] * wo[n];
                    }
                }
            } else {
                for (ptrdiff_t b = 0; b < count; b++) {
#pragma clang fp reassociate(on)
                    for (ptrdiff_t n = 0; n < modes; n++) {
                        sgr[b] += w_re[b * modes + n] * wg[n];
                        sgi[b] += w_im[b * modes + n] * wg[n];
                        sor[b] += w_re[b * modes + n] * wo[n];
                        soi[b] += w_im[b * modes + n] * wo[n];
                    }
                }
            }
            for (ptrdiff_t b = 0; b < count; b++) {
                const double gr = g_re[j0 + b], gi = g_im[j0 + b];
                r_re[(j0 + b) * pairs + p] = gr * sgr[b] - gi * sgi[b] - sor[b];
                r_im[(j0 + b) * pairs + p] = gr * sgi[b] + gi * sgr[b] - soi[b];
            }
        }
    }
}
