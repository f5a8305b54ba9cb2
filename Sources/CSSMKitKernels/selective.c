#include "selective.h"

#include <stdint.h>
#include <string.h>

#include "clones.h"

// 2^k for an integer-valued k with k + bias in [1, 2·bias]: after adding 1.5·2^p, the low bits
// of the significand hold k + bias; shifted into the exponent field they make 2^k.
static inline float pow2_f32(float k) {
    float t = k + (127.0f + 12582912.0f);
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits <<= 23;
    float r;
    memcpy(&r, &bits, sizeof r);
    return r;
}
static inline double pow2_f64(double k) {
    double t = k + (1023.0 + 6755399441055744.0);
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits <<= 52;
    double r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

// ---- float ---------------------------------------------------------------------------------
#define REAL float
#define ROW ssm_scan_row_f32
#define STEP ssm_step_rows_f32
#define FN(name) name##_f32
#define VINT int32_t
#define EXP_BIAS 127.0f
#define EXP_SHIFT 23
#define MAGIC 12582912.0f                 // 1.5 · 2^23
#define EXP_LO (-104.0f)                  // below: e^x rounds to 0
#define EXP_HI 89.0f                      // above: e^x overflows to inf
#define LN2_HI 0.693359375f               // 9 significant bits: k · LN2_HI is exact
#define LN2_LO (-2.12194440e-4f)
// Σ_{j ≤ 7} r^j / j!   (r^8/8! < 5e-9 for |r| ≤ ln2/2)
#define TAYLOR_EXP(r)                                                                             \
    (1.0f + (r) * (1.0f + (r) * (0.5f + (r) * (1.0f / 6 + (r) * (1.0f / 24 + (r) * (1.0f / 120 + \
     (r) * (1.0f / 720 + (r) * (1.0f / 5040))))))))
// Σ_{j ≤ 5} s2^j / (2j + 1)   (s2 ≤ 0.0295: the next term is below 2e-9)
#define ATANH_SERIES(s2)                                                                          \
    (1.0f + (s2) * (1.0f / 3 + (s2) * (1.0f / 5 + (s2) * (1.0f / 7 + (s2) * (1.0f / 9 + (s2) * (1.0f / 11))))))
#include "selective_row.h"
#undef REAL
#undef ROW
#undef STEP
#undef FN
#undef MAGIC
#undef EXP_LO
#undef EXP_HI
#undef LN2_HI
#undef LN2_LO
#undef TAYLOR_EXP
#undef ATANH_SERIES
#undef SSM_FIXED_N
#undef VINT
#undef EXP_BIAS
#undef EXP_SHIFT
#undef V16
#undef LOAD16
#undef POW2_16
#undef EXP16
#undef REDUCE16

// ---- double --------------------------------------------------------------------------------
#define REAL double
#define ROW ssm_scan_row_f64
#define STEP ssm_step_rows_f64
#define FN(name) name##_f64
#define VINT int64_t
#define EXP_BIAS 1023.0
#define EXP_SHIFT 52
#define MAGIC 6755399441055744.0          // 1.5 · 2^52
#define EXP_LO (-746.0)
#define EXP_HI 710.0
#define LN2_HI 0.693145751953125          // 16 significant bits: k · LN2_HI is exact
#define LN2_LO 1.42860682030941723212e-6
// Σ_{j ≤ 13} r^j / j!   (r^14/14! < 5e-18 for |r| ≤ ln2/2)
#define TAYLOR_EXP(r)                                                                             \
    (1.0 + (r) * (1.0 + (r) * (1.0 / 2 + (r) * (1.0 / 6 + (r) * (1.0 / 24 + (r) * (1.0 / 120 +   \
     (r) * (1.0 / 720 + (r) * (1.0 / 5040 + (r) * (1.0 / 40320 + (r) * (1.0 / 362880 +           \
     (r) * (1.0 / 3628800 + (r) * (1.0 / 39916800 + (r) * (1.0 / 479001600 +                     \
     (r) * (1.0 / 6227020800.0))))))))))))))
// Σ_{j ≤ 11} s2^j / (2j + 1)   (s2 ≤ 0.0295: the next term is below 1e-18)
#define ATANH_SERIES(s2)                                                                          \
    (1.0 + (s2) * (1.0 / 3 + (s2) * (1.0 / 5 + (s2) * (1.0 / 7 + (s2) * (1.0 / 9 + (s2) * (1.0 / 11 + \
     (s2) * (1.0 / 13 + (s2) * (1.0 / 15 + (s2) * (1.0 / 17 + (s2) * (1.0 / 19 + (s2) * (1.0 / 21 + \
     (s2) * (1.0 / 23))))))))))))
#include "selective_row.h"

ptrdiff_t ssm_scan_backward_work(ptrdiff_t length, ptrdiff_t state, ptrdiff_t chunk) {
    ptrdiff_t chunks = (length + chunk - 1) / chunk;
    return 5 * length + chunks * state + (2 * chunk + 1) * state + 2 * state;
}
