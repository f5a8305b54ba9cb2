#ifndef SSMKIT_MPI_H
#define SSMKIT_MPI_H

/* MPI for SSMKit, loaded at run time: the package builds and runs without OpenMPI, and uses
   the library of the machine (libmpi.so.40, OpenMPI 4 and 5) when a job is launched by mpirun.
   Every function returns 0 on success, or an MPI error code (-1: MPI is not loaded). */

/* Loads libmpi and resolves what SSMKit calls. On failure writes the reason to `error`. */
int ssm_mpi_load(char *error, int capacity);
/* MPI_Init_thread with MPI_THREAD_FUNNELED (once; MPI_Finalize runs at exit), then this
   process's rank and the world size. */
/* What ssm_mpi_init returns when the library cannot give MPI_THREAD_FUNNELED. */
#define SSM_MPI_SINGLE_THREADED (-2)
int ssm_mpi_init(int *rank, int *size);
/* In-place sum over all ranks of `count` float (is_double 0) or double (1) values. */
int ssm_mpi_allreduce_sum(void *buffer, long count, int is_double);
/* Rank `root`'s `bytes` bytes to every rank. */
int ssm_mpi_broadcast(void *buffer, long bytes, int root);
int ssm_mpi_barrier(void);
/* Ends every rank of the job with `code`. */
void ssm_mpi_abort(int code);

#endif
