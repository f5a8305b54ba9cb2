#include "recurrence.h"

// Clones for x86-64 CPUs with AVX2 or AVX-512 (see CSSMKitSpectral).
#if defined(__x86_64__) && defined(__ELF__) && defined(__clang__)
#define SSM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SSM_CLONES
#endif

#define REAL float
#define IO ssm_step_io_f32
#define FN(name) name##_f32
#include "recurrence_row.h"
#undef REAL
#undef IO
#undef FN

#define REAL double
#define IO ssm_step_io_f64
#define FN(name) name##_f64
#include "recurrence_row.h"
