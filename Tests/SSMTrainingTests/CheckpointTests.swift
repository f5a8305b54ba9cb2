import Foundation
import Testing
import SSMKit
@testable import SSMTraining

@Suite("Checkpoints and resume")
struct CheckpointTests {
    func temporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "ssmkit-\(name)-\(UInt32.random(in: 0 ... .max))"
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    func trainer(_ family: ModelFamily, steps: Int) throws -> Trainer<Double> {
        let task = try TrainingTask(.selectiveCopying, length: 12, vocabulary: 6, tokensToCopy: 2)
        let c = try ModelConfiguration(family: family, layers: 2, width: 4, state: 4, input: task.input, output: task.output, dropout: 0.1)
        let settings = try TrainingConfiguration(steps: steps, batch: 3, learningRate: 1e-2, warmup: min(2, steps), seed: 42, validationSize: 4)
        return try Trainer(model: try SequenceModel<Double>(configuration: c, threads: 2), task: task, configuration: settings)
    }

    @Test("training 6 steps = 3 steps, checkpoint, read back, 3 more steps: bit for bit", arguments: [ModelFamily.s4d, .s4, .mamba, .mamba2])
    func exactResume(_ family: ModelFamily) throws {
        var straight = try trainer(family, steps: 6)
        for _ in 0 ..< 6 { _ = try straight.trainStep() }
        var first = try trainer(family, steps: 6)
        for _ in 0 ..< 3 { _ = try first.trainStep() }
        let dir = temporaryDirectory("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Checkpoint.write(directory: dir, configuration: first.model.configuration!, parameters: first.parameters, optimizer: first.optimizer)
        let contents = try Checkpoint.read(directory: dir, as: Double.self)
        #expect(contents.configuration == first.model.configuration)
        var resumed = try Trainer(model: first.model, task: first.task, configuration: first.configuration, parameters: contents.parameters,
                                  optimizer: try #require(contents.optimizer))
        #expect(resumed.step == 3)
        for _ in 0 ..< 3 { _ = try resumed.trainStep() }
        for name in straight.parameters.names {
            #expect(straight.parameters[name] == resumed.parameters[name], "\(family) \(name) differs after resume")
        }
        // A run that changed nothing would pass trivially: the parameters did move.
        let initial = try straight.model.initialParameters(seed: 42)
        #expect(straight.parameters.names.contains { straight.parameters[$0] != initial[$0] })
    }

    @Test("model.safetensors holds the official names and shapes; hostile checkpoints are refused with typed errors")
    func namesAndBadFiles() throws {
        let t = try trainer(.s4d, steps: 1)
        let dir = temporaryDirectory("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Checkpoint.write(directory: dir, configuration: t.model.configuration!, parameters: t.parameters, optimizer: t.optimizer)
        let file = try SafeTensorsFile(path: dir + "/model.safetensors")
        #expect(file.entry("s4_layers.1.kernel.C")?.shape == [4, 2, 2])
        #expect(file.entry("s4_layers.0.output_linear.0.weight")?.shape == [8, 4, 1])
        #expect(file.entry("norms.0.weight")?.shape == [4])
        #expect(file.entry("encoder.weight")?.shape == [6, 4])
        #expect(file.entry("decoder.bias")?.shape == [6])
        // Missing tensor, wrong shape, NaN, extra tensor: each refused.
        var tensors = t.parameters.names.map { ($0, SafeTensorsValue(Tensor(shape: t.parameters.shapes[$0]!, scalars: t.parameters[$0]))) }
        let path = dir + "/edited.safetensors"
        func refuses(_ edited: [(String, SafeTensorsValue)]) throws {
            try SafeTensorsFile.write(edited.map { (name: $0.0, value: $0.1) }, metadata: t.model.configuration!.metadata, to: path)
            #expect(throws: (any Error).self) { try Checkpoint.read(directory: path, as: Double.self) }
        }
        try refuses(Array(tensors.dropFirst()))
        tensors[1] = (tensors[1].0, SafeTensorsValue(Tensor<Double>(shape: [3], scalars: [1, 2, 3])))
        try refuses(tensors)
        tensors = t.parameters.names.map { ($0, SafeTensorsValue(Tensor(shape: t.parameters.shapes[$0]!, scalars: t.parameters[$0]))) }
        let d = t.parameters["s4_layers.0.D"]
        tensors[tensors.firstIndex { $0.0 == "s4_layers.0.D" }!].1 = SafeTensorsValue(Tensor(shape: [4], scalars: [.nan] + d.dropFirst()))
        try refuses(tensors)
        tensors = t.parameters.names.map { ($0, SafeTensorsValue(Tensor(shape: t.parameters.shapes[$0]!, scalars: t.parameters[$0]))) }
        try refuses(tensors + [("s4_layers.9.D", SafeTensorsValue(Tensor<Double>(shape: [1], scalars: [0])))])
        // Truncated bytes and a directory without files.
        let bytes = try #require(FileManager.default.contents(atPath: dir + "/model.safetensors"))
        #expect(FileManager.default.createFile(atPath: path, contents: bytes.prefix(bytes.count / 2)))
        #expect(throws: SafeTensorsError.self) { try Checkpoint.read(directory: path, as: Double.self) }
        #expect(throws: SafeTensorsError.self) { try Checkpoint.read(directory: dir + "/absent", as: Double.self) }
        // Optimizer and model from different steps are refused.
        var later = t
        _ = try later.trainStep()
        try Checkpoint.write(directory: dir + "/later", configuration: t.model.configuration!, parameters: later.parameters, optimizer: later.optimizer)
        try FileManager.default.copyItem(atPath: dir + "/model.safetensors", toPath: dir + "/later/model.safetensors.old")
        try FileManager.default.removeItem(atPath: dir + "/later/model.safetensors")
        try FileManager.default.moveItem(atPath: dir + "/later/model.safetensors.old", toPath: dir + "/later/model.safetensors")
        #expect(throws: SSMError.self) { try Checkpoint.read(directory: dir + "/later", as: Double.self) }
    }

    @Test("the official S4D layer's parameters, as PyTorch wrote them (the s4d_layer fixtures), load and give the fixture's y",
          arguments: ["s4d_layer_H4_L100_bwd_f64", "s4d_layer_H8_L512_bwd_f32"])
    func officialS4DLayer(_ name: String) throws {
        // Tests/Fixtures, beside this target's folder.
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").path
        let input = try SafeTensorsFile(path: "\(directory)/\(name).in.safetensors")
        let output = try SafeTensorsFile(path: "\(directory)/\(name).out.safetensors")
        let u = try input.tensor("u", as: Double.self)
        let (B, H, L) = (u.shape[0], u.shape[1], u.shape[2])
        let N2 = try #require(input.entry("kernel.C")).shape[1]
        var layout = ParameterSet<Double>()
        for (n, shape) in [("kernel.log_dt", [H]), ("kernel.C", [H, N2, 2]), ("kernel.log_A_real", [H, N2]), ("kernel.A_imag", [H, N2]),
                           ("D", [H]), ("output_linear.0.weight", [2 * H, H, 1]), ("output_linear.0.bias", [2 * H])] {
            layout.add(n, shape: shape, values: [Double](repeating: 0, count: shape.reduce(1, *)))
        }
        let p = try Checkpoint.load(input, layout: layout, ignoring: ["u", "d_y"])
        let mixer = try S4DMixer<Double>(width: H, state: 2 * N2)
        let y = try mixer.forward(u.scalars, batch: B, length: L, parameters: p).y
        let expected: [Double] = try output.tensor("y", as: Double.self).scalars
        let err = zip(y, expected).reduce(0.0) { max($0, abs($1.0 - $1.1)) } / expected.reduce(0.0) { max($0, abs($1)) }
        // Float32 fixtures were computed in float32 by PyTorch: their own rounding is ~1e-6.
        #expect(err <= (name.hasSuffix("f64") ? 1e-12 : 1e-5), "\(name): relative error \(err)")
    }
}
