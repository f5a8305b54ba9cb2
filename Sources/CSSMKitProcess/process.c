#include "process.h"

#if defined(__GLIBC__)
#include <malloc.h>

int ssm_keep_freed_memory(void) {
    // Blocks up to 1 GiB come from the heap, and the heap is not trimmed below 1 GiB of free
    // space: the training step's activations are allocated and freed every step, and with the
    // default (≥ 128 KiB mmap-ed, unmapped on free) each step paid their page faults again.
    return mallopt(M_MMAP_THRESHOLD, 1 << 30) && mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
#else
int ssm_keep_freed_memory(void) { return 0; }
#endif
