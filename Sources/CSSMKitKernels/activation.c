#include "activation.h"

#include <math.h>

#include "clones.h"

// 1/√2 and 1/√(2π).
#define SSM_SQRT1_2 0.70710678118654752440f
#define SSM_INV_SQRT_2PI 0.39894228040143267794f

SSM_CLONES void ssm_gelu_f32(const float *restrict x, float *restrict y, float *restrict d, ptrdiff_t count) {
    // erf(t)/t = P(t²) on [0, 1].
    const float p0 = 1.1283791657319f, p1 = -0.3761262583884164f, p2 = 0.11283585265030917f, p3 = -0.026853815900569254f,
                p4 = 0.0051883342452374755f, p5 = -0.0008010245695230465f, p6 = 7.85402032298857e-05f;
    // erfc(t)·e^{t²} = R(s), s = (1/t − 7/12)/(5/12), on [1, 6].
    const float r0 = 0.2897221173320517f, r1 = 0.16536270937638348f, r2 = -0.030831100962670104f, r3 = 0.0028207257008748205f,
                r4 = 0.0010348440251303534f, r5 = -0.0007359994596238423f, r6 = 0.0002643682200925334f,
                r7 = -6.106353595942667e-05f, r8 = -2.295352098466317e-06f, r9 = 1.7130310349824883e-05f,
                r10 = -7.862432927797678e-06f;
    for (ptrdiff_t i = 0; i < count; i++) {
        float v = x[i], e = d[i];  // e = e^{−v²/2} = e^{−t²}
        float t = v * SSM_SQRT1_2, a = fabsf(t), s2 = t * t;
        float small = t * (p0 + s2 * (p1 + s2 * (p2 + s2 * (p3 + s2 * (p4 + s2 * (p5 + s2 * p6))))));
        float c = fminf(fmaxf(a, 1.0f), 6.0f);
        float s = (1.0f / c - 7.0f / 12.0f) * (12.0f / 5.0f);
        float r = r0 + s * (r1 + s * (r2 + s * (r3 + s * (r4 + s * (r5 + s * (r6 + s * (r7 + s * (r8 + s * (r9 + s * r10)))))))));
        float large = copysignf(1.0f - e * r, t);
        float erf = a <= 1.0f ? small : large;
        float phi = 0.5f * (1.0f + erf);
        y[i] = v * phi;
        d[i] = phi + v * e * SSM_INV_SQRT_2PI;
    }
}
