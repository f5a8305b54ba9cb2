import Foundation
import Testing
@testable import SSMKit

/// `mpirun -np 2 ssm train …` against the single-process run (OpenMPI; scripts/setup.sh
/// installs it).
@Suite("data-parallel training over MPI", .serialized)
struct DataParallelTests {
    static let mpirun = "/usr/bin/mpirun"
    /// mpirun refuses root without these; CI runs as root. Under AddressSanitizer
    /// (scripts/sanitize.sh) the ranks' leak check is off: OpenMPI's own allocations at exit come
    /// from plug-ins it has unloaded, with no module left to suppress them by.
    static let environment: [String: String] = {
        var e = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]
        if BuildInfo.underAddressSanitizer {
            e["ASAN_OPTIONS"] = (ProcessInfo.processInfo.environment["ASAN_OPTIONS"] ?? "") + ":detect_leaks=0"
        }
        return e
    }()

    func mpi(_ ranks: Int, _ arguments: [String]) throws -> RunResult {
        try runProcess(Self.mpirun, ["-np", "\(ranks)", "--oversubscribe", ssmExecutable] + arguments, environment: Self.environment)
    }

    func lastJSON(_ r: RunResult) throws -> JSONValue {
        try JSONValue.parse(Array(try #require(r.stdout.split(separator: "\n").last).utf8))
    }

    /// The largest relative difference between two checkpoints' tensors, per file.
    func difference(_ a: String, _ b: String) throws -> Double {
        var worst = 0.0
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let (x, y) = (try SafeTensorsFile(path: a + "/" + file), try SafeTensorsFile(path: b + "/" + file))
            #expect(x.names == y.names)
            for name in x.names {
                let (u, v) = (try x.tensor(name, as: Double.self).scalars, try y.tensor(name, as: Double.self).scalars)
                let scale = max(u.map(abs).max() ?? 0, .leastNormalMagnitude)
                worst = max(worst, zip(u, v).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0)
            }
        }
        return worst
    }

    /// The sums over ranks differ from the one-process sums in their order only: 4e-15 measured
    /// after 20 AdamW steps; 1e-12 leaves room for the amplification of other seeds.
    @Test("2 ranks × their share of the batch give the single-process validation loss and parameters to 1e-12 (float64, 20 steps)",
          arguments: [("s4d", "selective-copying", 16), ("mamba", "selective-copying", 15), ("s4d", "adding", 15)])
    func followsSingleProcess(model: String, task: String, batch: Int) throws {
        let (one, two) = (temporaryPath("one"), temporaryPath("two"))
        let common = ["train", "--task", task, "--model", model, "--steps", "20", "--batch", "\(batch)", "--precision", "float64",
                      "--threads", "1", "--validation-size", "63", "--json"]
        let single = try runSSM(common + ["--checkpoint", one])
        #expect(single.status == 0, "\(single.stderr)")
        let parallel = try mpi(2, common + ["--checkpoint", two])
        #expect(parallel.status == 0, "\(parallel.stderr)")
        let (j1, j2) = (try lastJSON(single), try lastJSON(parallel))
        #expect(j1["ranks"]?.integer == 1 && j2["ranks"]?.integer == 2)
        // Rank 0 alone prints: one JSON line.
        #expect(parallel.stdout.split(separator: "\n").filter { $0.hasPrefix("{") }.count == 1)
        let (l1, l2) = (try #require(j1["loss"]?.double), try #require(j2["loss"]?.double))
        #expect(abs(l1 - l2) <= 1e-12 * abs(l1), "validation loss \(l1) vs \(l2)")
        #expect(try difference(one, two) <= 1e-12)
    }

    @Test("a resumed 2-rank run repeats the uninterrupted one")
    func resume() throws {
        let (whole, part) = (temporaryPath("whole"), temporaryPath("part"))
        let common = ["train", "--task", "selective-copying", "--model", "s4d", "--steps", "12", "--batch", "8", "--precision", "float64",
                      "--threads", "1", "--validation-size", "32", "--json"]
        #expect(try mpi(2, common + ["--checkpoint", whole]).status == 0)
        #expect(try mpi(2, common + ["--checkpoint", part, "--stop-after", "5"]).status == 0)
        let resumed = try mpi(2, ["train", "--resume", part, "--checkpoint", part, "--precision", "float64", "--threads", "1", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try lastJSON(resumed)["steps"]?.integer == 12)
        #expect(try difference(whole, part) == 0)
    }

    @Test("a rank killed mid-run ends the job with a non-zero status and a message within 60 s")
    func killedRank() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun)
        process.arguments = ["-np", "2", "--oversubscribe", ssmExecutable, "train", "--task", "selective-copying", "--model", "s4d",
                             "--steps", "1000000", "--threads", "1"]
        process.environment = ProcessInfo.processInfo.environment.merging(Self.environment) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Wait for both ranks (children of mpirun), then kill one.
        var ranks: [Int32] = []
        for _ in 0 ..< 200 where ranks.count < 2 {
            usleep(50_000)
            ranks = children(of: process.processIdentifier)
        }
        #expect(ranks.count == 2)
        usleep(500_000)
        if let victim = ranks.last { kill(victim, SIGKILL) }
        let killed = Date()
        while process.isRunning, Date().timeIntervalSince(killed) < 60 { usleep(100_000) }
        let ended = !process.isRunning
        if !ended { process.terminate() }
        #expect(ended, "the job still runs 60 s after a rank was killed")
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!message.isEmpty)
    }

    @Test("a rank that fails alone (rank 0 cannot write its checkpoint) ends the job with its message, not a hang")
    func oneRankFails() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun)
        process.arguments = ["-np", "2", "--oversubscribe", ssmExecutable, "train", "--task", "selective-copying", "--model", "s4d",
                             "--steps", "2", "--threads", "1", "--checkpoint", "/proc/no-such-folder/run"]
        process.environment = ProcessInfo.processInfo.environment.merging(Self.environment) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let began = Date()
        while process.isRunning, Date().timeIntervalSince(began) < 60 { usleep(100_000) }
        let ended = !process.isRunning
        if !ended { process.terminate() }
        #expect(ended, "the job still runs after 60 s")
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(message.contains("ssm: ") && message.contains("/proc/no-such-folder"), "\(message)")
    }

    /// The pids whose parent is `parent` (from /proc).
    func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == parent
        }.sorted()
    }
}
