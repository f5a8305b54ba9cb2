import Foundation
import Testing
@testable import SSMKit

/// SSMKit's training step allocates nothing after warm-up: the heap count of `ssm bench train`
/// is the same for 2 timed steps as for 6, for S4D, S4 and Mamba models and mixed stacks (one thread, so
/// that no concurrent caller sends the worker pool's work through Dispatch). Counted twice:
/// - by valgrind, which cannot read Swift's DWARF 5 (it runs a copy of `ssm` without debug
///   info) and emulates no AVX-512, so the libraries' AVX-512 paths do not run under it;
/// - by a counting `malloc` preloaded into the process (compiled here with the C compiler),
///   which sees the kernels this CPU really runs: OpenBLAS's AVX-512 small-matrix kernels
///   allocate on each call for some shapes, and SSMKit routes those shapes around them (BLAS.swift).
/// `scripts/setup.sh` installs valgrind.
@Suite("allocations per training step")
struct AllocationTests {
    static let sanitized = BuildInfo.underAddressSanitizer || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil
    static let toolsPresent = ["/usr/bin/valgrind", "/usr/bin/objcopy"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

    /// The `total heap usage: N allocs` valgrind prints for one run.
    static func allocations(_ executable: String, _ arguments: [String]) throws -> Int {
        let run = try runProcess("/usr/bin/valgrind", [executable] + arguments)
        #expect(run.status == 0, "\(arguments): \(run.stderr.suffix(800))")
        guard let line = run.stderr.split(separator: "\n").first(where: { $0.contains("total heap usage:") }),
              let count = line.split(separator: ":").last?.split(separator: " ").first.map({ Int($0.replacingOccurrences(of: ",", with: "")) }) ?? nil
        else { Issue.record("no heap summary from valgrind: \(run.stderr.suffix(800))"); return -1 }
        return count
    }

    /// A shared library whose malloc, calloc, realloc and aligned allocations count themselves
    /// and call glibc's own; the total is written at exit to `$SSM_MALLOC_COUNT_FILE`.
    static let counter = """
        #include <stddef.h>
        #include <stdio.h>
        #include <stdlib.h>
        extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
        extern void *__libc_memalign(size_t, size_t);
        static unsigned long count;
        void *malloc(size_t n) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_malloc(n); }
        void *calloc(size_t n, size_t s) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_calloc(n, s); }
        void *realloc(void *p, size_t n) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_realloc(p, n); }
        void *memalign(size_t a, size_t n) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_memalign(a, n); }
        void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
        int posix_memalign(void **p, size_t a, size_t n) { *p = memalign(a, n); return *p ? 0 : 12; }
        __attribute__((destructor)) static void report(void) {
            const char *path = getenv("SSM_MALLOC_COUNT_FILE");
            FILE *f = path ? fopen(path, "w") : NULL;
            if (f) { fprintf(f, "%lu\\n", __atomic_load_n(&count, __ATOMIC_RELAXED)); fclose(f); }
        }
        """

    /// The C compiler: `cc`, else the Swift toolchain's `clang`, from PATH.
    static let compiler: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").flatMap { dir in
        ["cc", "clang"].map { "\(dir)/\($0)" }
    }.first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The models: two blocks of one family each, and a stack of mixed blocks under each
    /// backbone (its token-major stream with RMSNorm, or with LayerNorm; the S4 blocks' input and
    /// output transposed to and from it).
    static let models = [["--model", "s4d", "--layers", "2"], ["--model", "s4", "--layers", "2"], ["--model", "mamba", "--layers", "2"],
                         ["--mixers", "s4d,mamba,s4"], ["--mixers", "mamba,s4d", "--backbone", "s4"]]
    static let trainArguments = ["bench", "train", "--channels", "16", "--length", "64", "--batch", "4", "--state", "16",
                                 "--no-bound", "--threads", "1"]

    @Test("a preloaded malloc counter: 6 steps of ssm bench train allocate as often as 2 on this CPU's own kernels (S4D, S4, Mamba, mixed stacks)",
          .disabled(if: sanitized, "a sanitizer's runtime owns malloc"),
          .enabled(if: compiler != nil, "no C compiler (cc or clang) on PATH"))
    func steadyStateOnThisCPU() throws {
        let (source, library, report) = (temporaryPath("count.c"), temporaryPath("count.so"), temporaryPath("count.txt"))
        defer { for f in [source, library, report] { unlink(f) } }
        try Self.counter.write(toFile: source, atomically: true, encoding: .utf8)
        let build = try runProcess(try #require(Self.compiler), ["-shared", "-fPIC", "-O2", "-o", library, source])
        try #require(build.status == 0, "compiling the counter: \(build.stderr)")
        for model in Self.models {
            func count(_ repeats: Int) throws -> Int {
                unlink(report)
                let run = try runProcess(ssmExecutable, Self.trainArguments + model + ["--repeats", "\(repeats)"],
                                         environment: ["LD_PRELOAD": library, "SSM_MALLOC_COUNT_FILE": report])
                #expect(run.status == 0, "\(model): \(run.stderr.suffix(800))")
                return Int((try? String(contentsOfFile: report, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
            }
            let (two, six) = (try count(2), try count(6))
            #expect(two > 0 && six == two, "\(model): \(two) heap allocations with 2 steps, \(six) with 6 (\(BLAS.backendDescription))")
        }
    }

    @Test("valgrind: 6 steps of ssm bench train allocate as often as 2 (S4D, S4, Mamba, mixed stacks)",
          .disabled(if: sanitized, "valgrind cannot run a sanitized binary"),
          .enabled(if: toolsPresent, "valgrind and objcopy are not installed (scripts/setup.sh installs valgrind)"))
    func steadyState() throws {
        let stripped = temporaryPath("ssm")
        defer { unlink(stripped) }
        #expect(try runProcess("/usr/bin/objcopy", ["--strip-debug", ssmExecutable, stripped]).status == 0)
        for model in Self.models {
            func count(_ repeats: Int) throws -> Int {
                try Self.allocations(stripped, Self.trainArguments + model + ["--repeats", "\(repeats)"])
            }
            let (two, six) = (try count(2), try count(6))
            #expect(two > 0 && six == two, "\(model): \(two) heap allocations with 2 steps, \(six) with 6")
        }
    }
}
