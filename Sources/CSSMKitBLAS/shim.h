#ifndef SSMKIT_CLAPACK_SHIM_H
#define SSMKIT_CLAPACK_SHIM_H
// Complex LAPACK arguments as plain {real, imag} structs, which Swift imports (C99 _Complex it
// does not). Their layout equals swift-numerics' Complex<Float> and Complex<Double>.
typedef struct { float real, imag; } ssm_lapack_complex_float;
typedef struct { double real, imag; } ssm_lapack_complex_double;
#define LAPACK_COMPLEX_CUSTOM
#define lapack_complex_float ssm_lapack_complex_float
#define lapack_complex_double ssm_lapack_complex_double
#include <cblas.h>
#include <lapacke.h>
#endif
