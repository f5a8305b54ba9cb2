import Foundation
import Testing
@testable import SSMKit
import SSMTraining

/// A writer killed (SIGKILL) at any point leaves the previous file or checkpoint whole and
/// nothing partial under the final name.
@Suite("crash-safe writes", .serialized)
struct CrashSafetyTests {
    /// Starts `arguments`, kills it with SIGKILL after `delay` seconds (or, with `until`, once
    /// that path exists, within 60 s), and waits for it.
    func killed(_ arguments: [String], after delay: Double, until path: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ssmExecutable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        if let path {
            for _ in 0 ..< 600 where access(path, F_OK) != 0 { usleep(100_000) }
        }
        usleep(UInt32(delay * 1e6))
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    @Test("a training run killed at 40 points while it checkpoints every step leaves a readable checkpoint each time")
    func checkpointKilledAnywhere() throws {
        let directory = temporaryPath("checkpoint")
        let run = ["train", "--task", "selective-copying", "--model", "s4d", "--layers", "1", "--width", "16", "--state", "8",
                   "--steps", "1000000", "--batch", "2", "--threads", "1", "--checkpoint", directory, "--checkpoint-every", "1"]
        var rng = SplitMix64(seed: 3)
        var readable = 0, steps = Set<Int>()
        for k in 0 ..< 40 {
            // The first run lives until it has written a checkpoint; later ones die anywhere.
            try killed(run, after: Double.random(in: 0.05 ..< 0.6, using: &rng), until: k == 0 ? directory : nil)
            guard access(directory, F_OK) == 0 else {
                Issue.record("run \(k): no checkpoint (the previous one is gone, or the first run wrote none)")
                continue
            }
            #expect(Set(FileIO.entries(directory)) == [Checkpoint.modelFile, Checkpoint.optimizerFile], "run \(k)")
            let contents = try Checkpoint.read(directory: directory, as: Float.self)
            steps.insert(contents.optimizer?.step ?? -1)
            readable += 1
        }
        #expect(readable == 40)
        // The kills fell at different steps (the test exercised many points).
        #expect(steps.count >= 10, "\(steps.sorted())")
        // Temporary directories of killed writers may remain beside it; nothing else.
        let parent = (directory as NSString).deletingLastPathComponent, base = (directory as NSString).lastPathComponent
        for name in FileIO.entries(parent) where name.hasPrefix(base) && name != base {
            #expect(name.hasPrefix(base + ".tmp-"), "\(name)")
        }
    }

    @Test("ssm conv killed at 20 points leaves the previous output whole")
    func convKilledAnywhere() throws {
        let (input, kernel, output) = (temporaryPath("u.npy"), temporaryPath("k.npy"), temporaryPath("y.npy"))
        let (H, L) = (8, 1 << 18)
        var rng = SplitMix64(seed: 4)
        func npy(_ path: String, rows: Int, columns: Int) throws {
            let f = try NPYFile(writing: path, dtype: .float32, shape: [rows, columns])
            let values = (0 ..< columns).map { _ in Float.random(in: -1 ..< 1, using: &rng) }
            for h in 0 ..< rows { try values.withUnsafeBufferPointer { try f.write(channel: h, start: 0, count: columns, from: $0.baseAddress!) } }
            try f.finish()
        }
        try npy(input, rows: H, columns: L)
        try npy(kernel, rows: H, columns: 64)
        let conv = ["conv", "--input", input, "--kernel", kernel, "--output", output]
        #expect(try runSSM(conv).status == 0)
        let reference = try FileIO.readAll(output)
        for _ in 0 ..< 20 {
            try killed(conv, after: Double.random(in: 0.01 ..< 0.3, using: &rng))
            #expect(try FileIO.readAll(output) == reference)
        }
    }

    @Test("a full disk (a 256 KiB tmpfs) gives a clear error and keeps the previous checkpoint whole (needs root to mount)",
          .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func fullDisk() throws {
        let mountPoint = temporaryPath("full")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mountPoint])
        try #require(mounted.status == 0, "mount: \(mounted.stderr)")
        defer { _ = try? runProcess("/bin/umount", [mountPoint]) }
        let directory = mountPoint + "/run"
        let small = ["train", "--task", "selective-copying", "--model", "s4d", "--layers", "1", "--width", "16", "--state", "8",
                     "--steps", "2", "--threads", "1", "--checkpoint", directory]
        #expect(try runSSM(small).status == 0)
        let before = try FileIO.readAll(directory + "/" + Checkpoint.modelFile)
        let large = ["train", "--task", "selective-copying", "--model", "s4d", "--layers", "4", "--width", "256", "--state", "64",
                     "--steps", "1", "--batch", "2", "--threads", "1", "--checkpoint", directory]
        let r = try runSSM(large)
        #expect(r.status != 0)
        // After the progress lines, one error line naming the file and the reason.
        let error = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(error.hasPrefix("ssm: ") && error.contains(directory) && error.contains("No space left"), "\(r.stderr)")
        #expect(try FileIO.readAll(directory + "/" + Checkpoint.modelFile) == before)
        #expect(Set(FileIO.entries(mountPoint)) == ["run"], "\(FileIO.entries(mountPoint))")
        // ssm conv: the error, and no output file.
        let (u, k) = (temporaryPath("u.npy"), temporaryPath("k.npy"))
        for (path, columns) in [(u, 1 << 16), (k, 16)] {
            let f = try NPYFile(writing: path, dtype: .float64, shape: [2, columns])
            let zeros = [Double](repeating: 0.5, count: columns)
            for h in 0 ..< 2 { try zeros.withUnsafeBufferPointer { try f.write(channel: h, start: 0, count: columns, from: $0.baseAddress!) } }
            try f.finish()
        }
        let conv = try runSSM(["conv", "--input", u, "--kernel", k, "--output", mountPoint + "/y.npy"])
        #expect(conv.status != 0 && conv.stderr.contains("y.npy"), "\(conv.stderr)")
        #expect(access(mountPoint + "/y.npy", F_OK) != 0)
        #expect(Set(FileIO.entries(mountPoint)) == ["run"], "\(FileIO.entries(mountPoint))")
    }
}
