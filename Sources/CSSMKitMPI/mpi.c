#include "ssmkit_mpi.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* OpenMPI's handles are pointers to predefined globals (mpi.h: MPI_COMM_WORLD is
   &ompi_mpi_comm_world, MPI_SUM &ompi_mpi_op_sum, ...), so they are resolved by name. */
typedef void *handle;
static int (*mpi_init_thread)(int *, char ***, int, int *);
static int (*mpi_initialized)(int *);
static int (*mpi_finalize)(void);
static int (*mpi_comm_rank)(handle, int *);
static int (*mpi_comm_size)(handle, int *);
static int (*mpi_allreduce)(const void *, void *, int, handle, handle, handle);
static int (*mpi_bcast)(void *, int, handle, int, handle);
static int (*mpi_barrier)(handle);
static int (*mpi_abort)(handle, int);
static handle comm_world, type_float, type_double, type_byte, op_sum;
static int loaded;

#define MPI_IN_PLACE_ADDRESS ((void *)1)

int ssm_mpi_load(char *error, int capacity) {
    if (loaded) return 0;
    const char *names[] = {"libmpi.so.40", "libmpi.so"};
    void *library = NULL;
    for (int i = 0; i < 2 && !library; i++) {
        /* RTLD_GLOBAL: OpenMPI's own plug-ins, which it opens next, link against libmpi's symbols. */
        library = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    }
    if (!library) {
        snprintf(error, (size_t)capacity, "cannot load libmpi (OpenMPI; Debian: libopenmpi-dev): %s", dlerror());
        return -1;
    }
#define RESOLVE(target, symbol)                                                              \
    do {                                                                                     \
        *(void **)(&target) = dlsym(library, symbol);                                        \
        if (!target) {                                                                       \
            snprintf(error, (size_t)capacity, "libmpi has no %s (not OpenMPI?)", symbol);    \
            dlclose(library);                                                                \
            return -1;                                                                       \
        }                                                                                    \
    } while (0)
    RESOLVE(mpi_init_thread, "MPI_Init_thread");
    RESOLVE(mpi_initialized, "MPI_Initialized");
    RESOLVE(mpi_finalize, "MPI_Finalize");
    RESOLVE(mpi_comm_rank, "MPI_Comm_rank");
    RESOLVE(mpi_comm_size, "MPI_Comm_size");
    RESOLVE(mpi_allreduce, "MPI_Allreduce");
    RESOLVE(mpi_bcast, "MPI_Bcast");
    RESOLVE(mpi_barrier, "MPI_Barrier");
    RESOLVE(mpi_abort, "MPI_Abort");
    RESOLVE(comm_world, "ompi_mpi_comm_world");
    RESOLVE(type_float, "ompi_mpi_float");
    RESOLVE(type_double, "ompi_mpi_double");
    RESOLVE(type_byte, "ompi_mpi_byte");
    RESOLVE(op_sum, "ompi_mpi_op_sum");
#undef RESOLVE
    loaded = 1;
    return 0;
}

static void finalize(void) { mpi_finalize(); }

int ssm_mpi_init(int *rank, int *size) {
    if (!loaded) return -1;
    int already = 0;
    int status = mpi_initialized(&already);
    if (status == 0 && !already) {
        /* MPI_THREAD_FUNNELED (1 in OpenMPI's mpi.h): the process has worker threads, and only
           the thread that initialized MPI calls it. */
        int provided = 0;
        status = mpi_init_thread(NULL, NULL, 1, &provided);
        if (status == 0) atexit(finalize);
        if (status == 0 && provided < 1) return SSM_MPI_SINGLE_THREADED;
    }
    if (status == 0) status = mpi_comm_rank(comm_world, rank);
    if (status == 0) status = mpi_comm_size(comm_world, size);
    return status;
}

/* MPI counts are ints: long buffers go in pieces of at most 2^30 elements. */
static const long piece = 1L << 30;

int ssm_mpi_allreduce_sum(void *buffer, long count, int is_double) {
    if (!loaded) return -1;
    size_t width = is_double ? sizeof(double) : sizeof(float);
    for (long start = 0; start < count; start += piece) {
        long n = count - start < piece ? count - start : piece;
        int status = mpi_allreduce(MPI_IN_PLACE_ADDRESS, (char *)buffer + (size_t)start * width, (int)n,
                                   is_double ? type_double : type_float, op_sum, comm_world);
        if (status != 0) return status;
    }
    return 0;
}

int ssm_mpi_broadcast(void *buffer, long bytes, int root) {
    if (!loaded) return -1;
    for (long start = 0; start < bytes; start += piece) {
        long n = bytes - start < piece ? bytes - start : piece;
        int status = mpi_bcast((char *)buffer + start, (int)n, type_byte, root, comm_world);
        if (status != 0) return status;
    }
    return 0;
}

int ssm_mpi_barrier(void) { return loaded ? mpi_barrier(comm_world) : -1; }

void ssm_mpi_abort(int code) {
    if (loaded) mpi_abort(comm_world, code);
    /* Not exit(): its MPI_Finalize would wait for the ranks this call meant to end. */
    _exit(code);
}
