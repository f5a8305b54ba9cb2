import ArgumentParser
import SSMKit
import SSMTraining

extension Crosscheck {
    /// Scan mode against step mode for a Mamba or Mamba-2 block with its official
    /// initialization from --seed, on one input u (B, L, M) uniform in [−1, 1).
    func compare<Mixer: SequenceMixer>(_ mixer: Mixer) throws {
        typealias T = Mixer.Scalar
        let (B, L, M) = (batch, length, mixer.width)
        let parameters = try mixer.initialParameters(seed: seed)
        var rng = SplitMix64(seed: seed &+ 0x5EED)
        let u = (0 ..< B * L * M).map { _ in T.random(in: -1 ..< 1, using: &rng) }
        // Timed on a second call: the first one plans and allocates.
        _ = try mixer.forward(u, batch: B, length: L, parameters: parameters)
        var scan: [T] = []
        let scanSeconds = try seconds { scan = try mixer.forward(u, batch: B, length: L, parameters: parameters).y }
        var step: [T] = []
        let stepSeconds = try seconds { step = try mixer.forwardRecurrent(u, batch: B, length: L, parameters: parameters) }
        // Token-major: element k is at t = (k / M) mod L.
        let (maxAbs, relative, segments) = modeDifference(scan, step, length: L) { ($0 / M) % L }
        let limit = tolerance ?? (T.self == Float.self ? 1e-4 : 1e-10)
        let passed = relative <= limit
        let tokens = Double(B * L)
        let sizes = mixer.parameterDeclarations.map { "\($0.name)\($0.shape)" }.joined(separator: " ")
        if json {
            print(jsonLine([("model", model), ("batch", B), ("width", M), ("state", state), ("length", L), ("precision", T.precisionName),
                            ("max_abs_error", maxAbs), ("max_rel_error", relative), ("rel_error_by_eighth", segments), ("tolerance", limit),
                            ("passed", passed), ("scan_tokens_per_second", tokens / scanSeconds),
                            ("step_tokens_per_second", tokens / stepSeconds), ("threads", WorkerPool.onlineProcessorCount()),
                            ("cpu", BuildInfo.cpuModel)]))
        } else {
            print("crosscheck \(model): B=\(B) M=\(M) N=\(state) L=\(L) \(T.precisionName) seed=\(seed)  [\(sizes)]")
            print("  max |y_scan − y_step| = \(maxAbs)   relative to max|y| = \(relative)   tolerance \(limit)")
            print("  relative error by eighth of t: " + segments.map { "\($0)" }.joined(separator: "  "))
            print("  scan mode \(formatFixed(tokens / scanSeconds, 1)) tokens/s, step mode \(formatFixed(tokens / stepSeconds, 1)) tokens/s")
            print(passed ? "  ok" : "  FAILED: the error exceeds the tolerance")
        }
        if !passed { throw ExitCode(1) }
    }
}
