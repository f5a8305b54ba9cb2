#ifndef SSMKIT_CLAPACK_SHIM_H
#define SSMKIT_CLAPACK_SHIM_H
#include <cblas.h>
#include <lapacke.h>
#endif
