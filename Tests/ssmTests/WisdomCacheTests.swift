import Foundation
import Testing

@Suite("the FFTW wisdom cache")
struct WisdomCacheTests {
    @Test("ssm bench --effort measure saves wisdom that a second process loads; ssm wisdom path and clear")
    func acrossProcesses() throws {
        let dir = temporaryPath("cache")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let environment = ["SSMKIT_CACHE_DIR": dir]
        let bench = ["bench", "conv", "--channels", "4", "--length", "1000", "--repeats", "1", "--effort", "measure", "--json"]
        let path = try runSSM(["wisdom", "path"], environment: environment)
        #expect(path.status == 0 && path.stdout == dir + "/fftw-wisdom\n", "\(path.stdout)\(path.stderr)")
        let first = try runSSM(bench, environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/fftw-wisdom"))
        // A new process registers FFTW's threaded solvers before importing, or FFTW refuses the file.
        let second = try runSSM(bench, environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        let clear = try runSSM(["wisdom", "clear"], environment: environment)
        #expect(clear.status == 0 && !FileManager.default.fileExists(atPath: dir + "/fftw-wisdom"), "\(clear.stderr)")
        // Clearing again is not an error; a file that is not wisdom is refused with one line.
        #expect(try runSSM(["wisdom", "clear"], environment: environment).status == 0)
        try Data("not wisdom".utf8).write(to: URL(fileURLWithPath: dir + "/fftw-wisdom"))
        let bad = try runSSM(bench, environment: environment)
        #expect(bad.status != 0 && bad.stderr.contains("wisdom"), "\(bad.stderr)")
    }
}
