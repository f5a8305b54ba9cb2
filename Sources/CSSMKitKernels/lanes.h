#ifndef SSMKIT_LANES_H
#define SSMKIT_LANES_H
// Fixed-width vectors for sums whose order must not depend on the CPU: an 8-double or
// 16-float value is one 512-bit register on AVX-512 and two or four narrower ones on the other
// clones (clones.h), with the same lanes, and so the same sums, on each. The `_u` types load
// from and store to any element-aligned address.
typedef double ssm_v8d __attribute__((vector_size(64)));
typedef double ssm_v8d_u __attribute__((vector_size(64), aligned(8)));
typedef float ssm_v16f __attribute__((vector_size(64)));
typedef float ssm_v16f_u __attribute__((vector_size(64), aligned(4)));
typedef float ssm_v8f_u __attribute__((vector_size(32), aligned(4)));
#endif
