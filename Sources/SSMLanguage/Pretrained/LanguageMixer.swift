import SSMKit
import SSMTraining

/// The mixer of a pretrained language model's blocks: Mamba (`MambaForCausalLM`) or Mamba-2
/// (`Mamba2ForCausalLM`). ``LanguageModel`` is written once over it; the conformances say how
/// a checkpoint's configuration names this family and which weights decoding may read as
/// bfloat16.
public protocol LanguageMixer<Scalar>: PrefillMixer where Scalar: SafeTensorsScalar {
    associatedtype Configuration: Sendable

    /// The Hugging Face architecture, for messages (`MambaForCausalLM`).
    static var architecture: String { get }
    /// The configuration of this family's mixer in `mixer`, or nil when it describes another.
    static func configuration(of mixer: LanguageModelConfiguration.Mixer) -> Configuration?

    init(configuration: Configuration, threads: Int?) throws(SSMError)

    /// The parameters a step can read from bfloat16 copies, in the order
    /// ``step(_:_:parameters:bfloat16:into:)`` takes them; empty when it reads none so.
    static var bfloat16Parameters: [String] { get }

    /// One token per sequence, reading the parameters ``bfloat16Parameters`` names from
    /// `bfloat16` (one pointer each) when it is not empty (Float, batch 1).
    func step(_ state: inout State, _ h: UnsafeBufferPointer<Scalar>, parameters: ParameterView<Scalar>,
              bfloat16: [UnsafePointer<UInt16>], into out: UnsafeMutableBufferPointer<Scalar>) throws(SSMError)
}

extension MambaMixer: LanguageMixer where T: SafeTensorsScalar {
    public static var architecture: String { "MambaForCausalLM" }

    public static func configuration(of mixer: LanguageModelConfiguration.Mixer) -> MambaConfiguration? {
        if case .mamba(let c) = mixer { return c }
        return nil
    }

    public static var bfloat16Parameters: [String] { ["in_proj.weight", "x_proj.weight", "dt_proj.weight", "out_proj.weight"] }

    public func step(_ state: inout State, _ h: UnsafeBufferPointer<T>, parameters: ParameterView<T>, bfloat16: [UnsafePointer<UInt16>],
                     into out: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        let copies = bfloat16.isEmpty ? nil : BFloat16Projections(inProj: bfloat16[0], xProj: bfloat16[1], dtProj: bfloat16[2], outProj: bfloat16[3])
        try step(&state, h, parameters: parameters, bfloat16: copies, into: out)
    }
}

extension Mamba2Mixer: LanguageMixer where T: SafeTensorsScalar {
    public static var architecture: String { "Mamba2ForCausalLM" }

    public static func configuration(of mixer: LanguageModelConfiguration.Mixer) -> Mamba2Configuration? {
        if case .mamba2(let c) = mixer { return c }
        return nil
    }

    /// None: a Mamba-2 step reads its weights in the model's precision.
    public static var bfloat16Parameters: [String] { [] }

    public func step(_ state: inout State, _ h: UnsafeBufferPointer<T>, parameters: ParameterView<T>, bfloat16: [UnsafePointer<UInt16>],
                     into out: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        try step(&state, h, parameters: parameters, into: out)
    }
}

/// A Mamba language model (`MambaForCausalLM`, mamba_ssm's `MambaLMHeadModel`).
public typealias MambaLanguageModel<T: SSMScalar & SafeTensorsScalar> = LanguageModel<MambaMixer<T>>
/// A Mamba-2 language model (`Mamba2ForCausalLM`, mamba_ssm's `MambaLMHeadModel` with Mamba-2 layers).
public typealias Mamba2LanguageModel<T: SSMScalar & SafeTensorsScalar> = LanguageModel<Mamba2Mixer<T>>
