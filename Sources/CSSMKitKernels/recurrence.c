#include "recurrence.h"

#include "clones.h"

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
