#ifndef SSMKIT_CFFTW_SHIM_H
#define SSMKIT_CFFTW_SHIM_H
#include <fftw3.h>
#endif
