import Foundation
import Testing

@Suite("ssm crosscheck")
struct CrosscheckTests {
    @Test("S4D and S4 (dense, linear) agree to rounding in float64; --json holds the figures",
          arguments: [["--model", "s4d"], ["--model", "s4d", "--initialization", "legs"],
                      ["--model", "s4", "--step-mode", "dense"], ["--model", "s4", "--step-mode", "linear"]])
    func agree(_ model: [String]) throws {
        let run = try runSSM(["crosscheck"] + model + ["--length", "777", "--batch", "2", "--channels", "3", "--state", "16", "--json"])
        #expect(run.status == 0, "\(model): \(run.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let error = try #require(object?["max_rel_error"] as? Double)
        #expect(error <= 1e-10, "\(model): \(error)")
        #expect(object?["passed"] as? Bool == true)
    }

    @Test("an error above the tolerance exits 1 after printing it; a bad option exits 64")
    func failure() throws {
        let run = try runSSM(["crosscheck", "--model", "s4d", "--length", "100", "--tolerance", "1e-300"])
        #expect(run.status == 1)
        #expect(run.stdout.contains("FAILED"))
        let bad = try runSSM(["crosscheck", "--model", "s5"])
        #expect(bad.status != 0 && bad.stderr.contains("--model"))
    }
}
