import Foundation
import Testing
@testable import SSMKit

/// SSMKit's training step allocates nothing after warm-up: valgrind's heap count of `ssm bench
/// train` is the same for 2 timed steps as for 6, for an S4D, an S4 and a Mamba model (one
/// thread, so that no concurrent caller sends the worker pool's work through Dispatch).
/// valgrind cannot read Swift's DWARF 5, so it runs a copy of `ssm` without debug info. It
/// emulates no AVX-512, so OpenBLAS's SkylakeX small-matrix kernels, which do allocate, do not
/// run under it (Performance.md). `scripts/setup.sh` installs valgrind.
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

    @Test("valgrind: 6 steps of ssm bench train allocate as often as 2 (S4D, S4, Mamba)",
          .disabled(if: sanitized, "valgrind cannot run a sanitized binary"),
          .enabled(if: toolsPresent, "valgrind and objcopy are not installed (scripts/setup.sh installs valgrind)"))
    func steadyState() throws {
        let stripped = temporaryPath("ssm")
        defer { unlink(stripped) }
        #expect(try runProcess("/usr/bin/objcopy", ["--strip-debug", ssmExecutable, stripped]).status == 0)
        for model in ["s4d", "s4", "mamba"] {
            func count(_ repeats: Int) throws -> Int {
                try Self.allocations(stripped, ["bench", "train", "--model", model, "--layers", "2", "--channels", "16", "--length", "64",
                                                "--batch", "4", "--state", "16", "--repeats", "\(repeats)", "--no-bound", "--threads", "1"])
            }
            let (two, six) = (try count(2), try count(6))
            #expect(two > 0 && six == two, "\(model): \(two) heap allocations with 2 steps, \(six) with 6")
        }
    }
}
