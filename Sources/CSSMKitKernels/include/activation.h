// The exact (erf) GELU and its derivative in one pass: y = v·Φ(v), d = Φ(v) + v·φ(v), with
// Φ(v) = (1 + erf(v/√2))/2 and φ(v) = e^{−v²/2}/√(2π) (SSMTraining's Activation.gelu).
//
// On entry d[i] holds e^{−x[i]²/2} (the caller computes it with ssm_exp_*, which vectorizes);
// on return y[i] and d[i] hold GELU and GELU′. The float version evaluates erf branch-free, so
// that it vectorizes: for |t| ≤ 1, t·P(t²); above, 1 − e^{−t²}·R(1/t) with e^{−t²} the value
// already in d (t = v/√2). P (degree 6) and R (degree 10, in (1/t − 7/12)/(5/12)) are
// least-squares fits with relative errors 1.2e-9 and 6.9e-9; in float the whole of erf is within
// 3 ulp over [−8, 8]. Double GELU stays in Swift, on the C library's erf.
#ifndef SSMKIT_ACTIVATION_H
#define SSMKIT_ACTIVATION_H

#include <stddef.h>

void ssm_gelu_f32(const float *x, float *y, float *d, ptrdiff_t count);

#endif
