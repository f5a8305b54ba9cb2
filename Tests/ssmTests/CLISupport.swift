import Foundation
@testable import SSMKit
@testable import ssm

/// The `ssm` executable built beside this test bundle.
let ssmExecutable: String = {
    let here = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0])
    var dir = here.deletingLastPathComponent()
    // The test binary sits in <config>/SSMKitPackageTests.xctest[/…]; ssm sits in <config>/.
    for _ in 0 ..< 4 {
        let candidate = dir.appendingPathComponent("ssm").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return "ssm"
}()

/// The repository's fixture folder, Tests/Fixtures.
let fixtureDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

/// The fixture folder's cases, or why it cannot be read: a missing or incomplete folder fails
/// `fixturesPresent`, so that the fixture tests never pass by running no case.
let fixtureSet = Result { try FixtureSet(directory: fixtureDirectory) }

/// The cases of `op` (none when the folder cannot be read, which `fixturesPresent` reports).
func fixtureCases(op: String) -> [FixtureCase] { (try? fixtureSet.get())?.cases(op: op) ?? [] }

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `ssm` with `arguments` (and `environment` added to this process's) and collects its
/// exit status and output.
func runSSM(_ arguments: [String], environment: [String: String] = [:]) throws -> RunResult {
    try runProcess(ssmExecutable, arguments, environment: environment)
}

/// Runs `executable` with `arguments` (and `environment` added to this process's) and collects
/// its exit status and output.
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    // Standard error goes to a file, so that a child writing more than a pipe holds to it
    // cannot block while standard output is read to its end.
    let out = Pipe(), errorPath = temporaryPath("stderr")
    guard FileManager.default.createFile(atPath: errorPath, contents: nil), let err = FileHandle(forWritingAtPath: errorPath) else {
        throw CocoaError(.fileWriteUnknown)
    }
    defer { try? FileManager.default.removeItem(atPath: errorPath) }
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try err.close()
    let stderrData = FileManager.default.contents(atPath: errorPath) ?? Data()
    return RunResult(status: process.terminationStatus,
                     stdout: String(decoding: stdoutData, as: UTF8.self),
                     stderr: String(decoding: stderrData, as: UTF8.self))
}

/// A fresh path in the temporary directory (not created).
func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "ssmkit-\(UInt32.random(in: 0 ... .max))-" + name
}
