// gemm_bench: times SSMKit's training-step GEMM shapes through one BLAS library, loaded at run
// time with dlopen from a full path, so that every candidate can be measured without touching
// the system's BLAS alternatives. One process measures one library at one thread count; the
// driver (bench.sh) interleaves the processes and takes medians.
//
//   gemm_bench --info LIB.so               what the library says about itself (core, config)
//   gemm_bench LIB.so THREADS [MIN_TIME]   one "RESULT <shape> <gflops> <maxrelerr>" line per shape
//
// The thread count is set through the library's own API (openblas_set_num_threads,
// bli_thread_set_num_threads), looked up with dlsym. A library that has none, or that is a
// serial build, runs only with THREADS = 1; for THREADS > 1 it prints "NOTHREADS <reason>" and
// exits 3. No environment variable is read or set here.
//
// Build: cc -O2 -o gemm_bench gemm_bench.c -ldl

#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// The CBLAS enumerations' values are fixed by the CBLAS standard; declaring them here keeps the
// program free of any one library's cblas.h.
enum { RowMajor = 101 };
enum { NoTrans = 111, Trans = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *,
                         int, double, double *, int);

// A shape is C (m × n) = op(A) · op(B) with inner dimension k, row-major.
// transA: A is stored k × m; transB: B is stored n × k.
typedef struct {
    const char *name;
    int dbl;
    int transA, transB;
    int m, k, n;
} shape_t;

// The training step's products (float32) and one float64 square product:
//   forward         y  = x · Wᵀ    x: M×K, W: N×K          (NoTrans, Trans)
//   input gradient  dx = dy · W    dy: M×N_out, W: N_out×K (NoTrans, NoTrans)
//   weight gradient dW = aᵀ · b    a: K×M, b: K×N, K = rows (Trans, NoTrans)
static const shape_t shapes[] = {
    {"sgemm fwd NT 16384x128->256", 0, 0, 1, 16384, 128, 256},
    {"sgemm dx NN 16384x256->128", 0, 0, 0, 16384, 256, 128},
    {"sgemm dW TN 128x16384->256", 0, 1, 0, 128, 16384, 256},
    {"sgemm fwd NT 4096x128->128", 0, 0, 1, 4096, 128, 128},
    {"dgemm NN 1024x1024x1024", 1, 0, 0, 1024, 1024, 1024},
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xalloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "gemm_bench: out of memory\n");
        exit(2);
    }
    return p;
}

// A fixed pseudo-random fill in [-1, 1), the same for every library.
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double next_uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Element (i, j) of op(A) · op(B), in double, for the spot check.
static double reference_entry(const shape_t *s, const void *A, const void *B, int i, int j) {
    double sum = 0;
    for (int p = 0; p < s->k; p++) {
        size_t ia = s->transA ? (size_t)p * s->m + i : (size_t)i * s->k + p;
        size_t ib = s->transB ? (size_t)j * s->k + p : (size_t)p * s->n + j;
        double a = s->dbl ? ((const double *)A)[ia] : ((const float *)A)[ia];
        double b = s->dbl ? ((const double *)B)[ib] : ((const float *)B)[ib];
        sum += a * b;
    }
    return sum;
}

static void info(const char *path, void *h) {
    printf("library: %s\n", path);
    char *(*ob_core)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    char *(*ob_config)(void) = (char *(*)(void))dlsym(h, "openblas_get_config");
    int (*ob_parallel)(void) = (int (*)(void))dlsym(h, "openblas_get_parallel");
    int (*ob_threads)(void) = (int (*)(void))dlsym(h, "openblas_get_num_threads");
    if (ob_core) printf("openblas_get_corename: %s\n", ob_core());
    if (ob_config) printf("openblas_get_config: %s\n", ob_config());
    if (ob_parallel) {
        int p = ob_parallel();
        printf("openblas_get_parallel: %d (%s)\n", p, p == 0 ? "serial" : p == 1 ? "pthreads" : p == 2 ? "openmp" : "?");
    }
    if (ob_threads) printf("openblas_get_num_threads: %d\n", ob_threads());

    const char *(*bli_version)(void) = (const char *(*)(void))dlsym(h, "bli_info_get_version_str");
    int (*bli_query)(void) = (int (*)(void))dlsym(h, "bli_arch_query_id");
    const char *(*bli_string)(int) = (const char *(*)(int))dlsym(h, "bli_arch_string");
    long (*bli_omp)(void) = (long (*)(void))dlsym(h, "bli_info_get_enable_openmp");
    long (*bli_pth)(void) = (long (*)(void))dlsym(h, "bli_info_get_enable_pthreads");
    if (bli_version) printf("bli_info_get_version_str: %s\n", bli_version());
    if (bli_query) {
        int id = bli_query();
        printf("bli_arch_query_id: %d", id);
        if (bli_string) printf(" (%s)", bli_string(id));
        printf("\n");
    }
    if (bli_omp && bli_pth)
        printf("bli threading: openmp=%ld pthreads=%ld\n", bli_omp(), bli_pth());
    if (!ob_core && !bli_query) printf("no core/config query API exported\n");
}

// Sets the thread count through the library's own API. Returns NULL on success, else why not.
static const char *set_threads(void *h, int threads) {
    void (*ob_set)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    int (*ob_parallel)(void) = (int (*)(void))dlsym(h, "openblas_get_parallel");
    if (ob_set) {
        if (threads > 1 && ob_parallel && ob_parallel() == 0) return "serial OpenBLAS build";
        ob_set(threads);
        return NULL;
    }
    void (*bli_set)(long) = (void (*)(long))dlsym(h, "bli_thread_set_num_threads");
    long (*bli_threading)(void) = (long (*)(void))dlsym(h, "bli_info_get_enable_threading");
    if (bli_set) {
        if (threads > 1 && bli_threading && !bli_threading()) return "serial BLIS build";
        bli_set(threads);
        return NULL;
    }
    if (threads == 1) return NULL; // no API: assumed single-threaded (reference BLAS, ATLAS serial)
    return "no thread-count API exported";
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--info") == 0) {
        void *h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
        info(argv[2], h);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s --info LIB.so | %s LIB.so THREADS [MIN_TIME_SECONDS]\n", argv[0], argv[0]);
        return 2;
    }
    const char *path = argv[1];
    int threads = atoi(argv[2]);
    double min_time = argc > 3 ? atof(argv[3]) : 0.2;
    if (threads < 1) threads = 1;

    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    sgemm_fn sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    dgemm_fn dgemm = (dgemm_fn)dlsym(h, "cblas_dgemm");
    if (!sgemm || !dgemm) { fprintf(stderr, "%s: cblas_sgemm/cblas_dgemm not exported\n", path); return 2; }

    const char *why = set_threads(h, threads);
    if (why) { printf("NOTHREADS %s\n", why); return 3; }

    for (int si = 0; si < NSHAPES; si++) {
        const shape_t *s = &shapes[si];
        size_t esz = s->dbl ? sizeof(double) : sizeof(float);
        size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
        void *A = xalloc(na * esz), *B = xalloc(nb * esz), *C = xalloc(nc * esz);
        rng_state = 0x9E3779B97F4A7C15ull + (uint64_t)si;
        for (size_t i = 0; i < na; i++) {
            if (s->dbl) ((double *)A)[i] = next_uniform(); else ((float *)A)[i] = (float)next_uniform();
        }
        for (size_t i = 0; i < nb; i++) {
            if (s->dbl) ((double *)B)[i] = next_uniform(); else ((float *)B)[i] = (float)next_uniform();
        }
        memset(C, 0, nc * esz);
        int lda = s->transA ? s->m : s->k;
        int ldb = s->transB ? s->k : s->n;
        int ldc = s->n;
        int ta = s->transA ? Trans : NoTrans, tb = s->transB ? Trans : NoTrans;

        // One untimed call (page faults, thread start-up, packing buffers), then timed calls
        // until MIN_TIME has passed and at least 3 were made; the median call counts.
        enum { MAXREPS = 4096 };
        static double t[MAXREPS];
        int reps = 0;
        double start = now();
        for (int r = -1; r < MAXREPS; r++) {
            double t0 = now();
            if (s->dbl)
                dgemm(RowMajor, ta, tb, s->m, s->n, s->k, 1.0, A, lda, B, ldb, 0.0, C, ldc);
            else
                sgemm(RowMajor, ta, tb, s->m, s->n, s->k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
            double t1 = now();
            if (r < 0) { start = t1; continue; }
            t[reps++] = t1 - t0;
            if (reps >= 3 && t1 - start >= min_time) break;
        }
        qsort(t, reps, sizeof t[0], cmp_double);
        double median = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
        double gflops = 2.0 * s->m * (double)s->n * s->k / median * 1e-9;

        // Spot check 32 entries against a double-precision dot product.
        double maxrel = 0;
        for (int q = 0; q < 32; q++) {
            int i = (int)((unsigned)(q * 2654435761u) % (unsigned)s->m);
            int j = (int)((unsigned)(q * 40503u + 17u) % (unsigned)s->n);
            double want = reference_entry(s, A, B, i, j);
            double got = s->dbl ? ((double *)C)[(size_t)i * ldc + j] : ((float *)C)[(size_t)i * ldc + j];
            double rel = fabs(got - want) / (fabs(want) + sqrt((double)s->k) * 1e-3);
            if (rel > maxrel) maxrel = rel;
        }
        printf("RESULT\t%s\t%.3f\t%.2e\t%d\n", s->name, gflops, maxrel, reps);
        fflush(stdout);
        free(A); free(B); free(C);
    }
    return 0;
}
