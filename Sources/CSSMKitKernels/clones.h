#ifndef SSMKIT_CLONES_H
#define SSMKIT_CLONES_H
// The one definition of SSM_CLONES: every hot loop of this target is compiled three times on
// x86-64 (AVX-512, AVX2 and the baseline) and the loader picks the copy for the CPU at load
// time (target_clones, an ifunc). Swift has no per-function target attribute, and the package
// must not force -march flags on its users. Other architectures get the plain loops, which
// their compilers vectorize for their own baseline. ssm_simd_path (cpu.c) reports the choice.
// A ThreadSanitizer build gets the plain loops too: the loader runs an ifunc's resolver before
// the sanitizer's runtime starts, and an instrumented resolver crashes there.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SSM_THREAD_SANITIZER 1
#endif
#endif
#if defined(__x86_64__) && defined(__ELF__) && defined(__clang__) && !defined(SSM_THREAD_SANITIZER)
#define SSM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define SSM_HAS_CLONES 1
#else
#define SSM_CLONES
#define SSM_HAS_CLONES 0
#endif
#endif
