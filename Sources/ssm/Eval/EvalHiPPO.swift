import ArgumentParser
import SSMKit

/// `ssm eval hippo`: HiPPO matrices and their normal-plus-low-rank form.
struct EvalHiPPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hippo",
        abstract: "HiPPO A, B of a measure and its NPLR form (official transition and nplr).",
        discussion: """
        Takes no tensors: --input may be omitted or name a file holding none.
        out: A (N, N), B (N), Lambda (N/2, 2), P (R, N/2, 2), B_dplr (N/2, 2), V (N, N/2, 2).
        Computed in float64; --dtype float32 rounds the outputs.
        """
    )

    @Option(name: .long, help: "Input safetensors file (must hold no tensors).")
    var input: String?

    @Option(name: .long, help: "Output safetensors file (written atomically).")
    var output: String

    @Option(name: .long, help: "legs, legt, lagt or fout (fourier).")
    var measure: String

    @Option(name: .long, help: "State size N (even).")
    var state: Int

    @Option(name: .long, help: "Rank R of the low-rank correction.")
    var rank: Int = 1

    @Option(name: .long, help: "float32 or float64.")
    var dtype: Precision = .float64

    func run() throws {
        if let input {
            let file = try SafeTensorsFile(path: input)
            if let extra = file.names.first {
                throw SSMError.unexpected(argument: extra, expected: "hippo takes no tensors")
            }
        }
        let name = measure == "fourier" ? "fout" : measure
        guard let m = HiPPOMeasure(rawValue: name) else {
            throw SSMError.option(name: "measure", expected: "legs, legt, lagt or fout, got \(measure)")
        }
        let N = state
        let nplr = try HiPPO.nplr(m, size: N, rank: rank)
        let (a, b) = try HiPPO.transition(m, size: N)
        let half = N / 2
        func real(_ z: [Complex<Double>]) -> [Double] { z.flatMap { [$0.real, $0.imaginary] } }
        let tensors: [(String, [Int], [Double])] = [
            ("A", [N, N], a), ("B", [N], b), ("Lambda", [half, 2], real(nplr.lambda)),
            ("P", [rank, half, 2], real(nplr.p)), ("B_dplr", [half, 2], real(nplr.b)), ("V", [N, half, 2], real(nplr.v)),
        ]
        let outputs: [(name: String, value: SafeTensorsValue)] = tensors.map { name, shape, values in
            switch dtype {
            case .float64: (name, .float64(Tensor(shape: shape, scalars: values)))
            case .float32: (name, .float32(Tensor(shape: shape, scalars: values.map(Float.init))))
            }
        }
        try SafeTensorsFile.write(outputs, to: output)
    }
}
