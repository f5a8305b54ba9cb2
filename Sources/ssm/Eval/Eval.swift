import ArgumentParser
import SSMKit

/// `ssm eval OP`: one operation on tensors read from a safetensors file (see the EvalContract article).
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one operation on tensors from a safetensors file and write the results.",
        discussion: """
        IN holds the operation's named tensors, all F32 or all F64; the operation runs in that \
        precision and OUT holds its outputs in the same dtype. When IN holds d_<output>, OUT \
        also holds d_<input> for every differentiable input: the gradient of Σ d_<output> ⊙ \
        <output>. On any error nothing is written and the exit status is non-zero.
        """,
        subcommands: [EvalFFTConv.self, EvalS4DKernel.self, EvalHiPPO.self, EvalS4DRecurrent.self, EvalS4Kernel.self,
                      EvalS4Recurrent.self, EvalSelectiveScan.self, EvalSSD.self, EvalMamba.self, EvalMamba2.self, EvalS4DLayer.self, EvalLM.self]
    )
}

/// Options every `ssm eval` operation takes.
struct EvalOptions: ParsableArguments {
    @Option(name: .long, help: "Input safetensors file.")
    var input: String

    @Option(name: .long, help: "Output safetensors file (written atomically).")
    var output: String

    @Option(name: .long, help: "Worker threads (default: all online processors).")
    var threads: Int?

    @Option(name: .long, help: "FFTW planner effort: estimate, measure, patient or exhaustive.")
    var effort: FFTPlannerEffort = .estimate

    func validate() throws {
        if let threads, threads < 1 {
            throw ValidationError("--threads: expected a positive count, got \(threads)")
        }
    }
}

/// The tensors of an `ssm eval` input file, read in one precision. Every name taken is
/// recorded, so that ``finish()`` can refuse tensors the operation does not take.
struct EvalInputs<T: SSMScalar> {
    let file: SafeTensorsFile
    private(set) var taken: Set<String> = []

    init(file: SafeTensorsFile) { self.file = file }

    /// The tensor `name`, checked to be finite and to have one of `shapes` (rank and, where an
    /// extent is given, its value; nil extents are free). `expected` describes the shape.
    mutating func required(_ name: String, _ expected: String, ranks: Set<Int>) throws -> Tensor<T> {
        guard file.entry(name) != nil else { throw SSMError.missing(argument: name, expected: "a tensor of shape \(expected)") }
        return try take(name, expected, ranks: ranks)
    }

    /// Like ``required(_:_:ranks:)`` but nil when the file has no tensor `name`.
    mutating func optional(_ name: String, _ expected: String, ranks: Set<Int>) throws -> Tensor<T>? {
        file.entry(name) == nil ? nil : try take(name, expected, ranks: ranks)
    }

    private mutating func take(_ name: String, _ expected: String, ranks: Set<Int>) throws -> Tensor<T> {
        taken.insert(name)
        let tensor = try file.tensor(name, as: T.self)
        guard ranks.contains(tensor.shape.count) else {
            throw SSMError.shape(argument: name, expected: expected, actual: tensor.shape)
        }
        try tensor.requireFinite(name)
        return tensor
    }

    /// Throws for the first tensor of the file that the operation did not take.
    func finish(_ accepted: String) throws {
        if let extra = file.names.first(where: { !taken.contains($0) }) {
            throw SSMError.unexpected(argument: extra, expected: "this operation takes \(accepted)")
        }
    }
}

/// The dtype an eval input file computes in: every tensor F32, or every tensor F64.
enum EvalPrecision {
    case float32, float64

    init(_ file: SafeTensorsFile) throws {
        guard let first = file.entries.first else {
            throw SSMError.missing(argument: "input", expected: "a file holding the operation's tensors")
        }
        for e in file.entries where e.dtype != first.dtype || (e.dtype != .f32 && e.dtype != .f64) {
            throw SSMError.value(argument: e.name,
                                 expected: "dtype F32 or F64, the same for every tensor (\(first.name) is \(first.dtype.rawValue), \(e.name) is \(e.dtype.rawValue))")
        }
        self = first.dtype == .f32 ? .float32 : .float64
    }
}

/// An `ssm eval` operation: tensors in (in the input file's precision), tensors out.
protocol EvalCommand: ParsableCommand {
    var options: EvalOptions { get }
    /// The outputs from the inputs (every input taken, `inputs.finish` called).
    func compute<T: SSMScalar>(_ inputs: inout EvalInputs<T>) throws -> [(name: String, value: SafeTensorsValue)]
}

extension EvalCommand {
    /// Reads the input file, runs ``compute(_:)`` in its precision and writes what it returns
    /// to `--output`.
    func run() throws {
        FFT.defaultEffort = options.effort
        let file = try SafeTensorsFile(path: options.input)
        let outputs: [(name: String, value: SafeTensorsValue)]
        switch try EvalPrecision(file) {
        case .float32:
            var inputs = EvalInputs<Float>(file: file)
            outputs = try compute(&inputs)
        case .float64:
            var inputs = EvalInputs<Double>(file: file)
            outputs = try compute(&inputs)
        }
        try SafeTensorsFile.write(outputs, to: options.output)
    }
}
