import SSMKit

/// The Mamba block of the official `mamba_simple.py` (`MambaBlock`) as a ``SequenceMixer``:
/// token-major, u: (B, L, M). Legend: M model width · E inner width · N state · K conv width ·
/// R dt rank.
///
/// Parameters (official names, `MambaConfiguration/parameterShapes`): `in_proj.weight`,
/// `conv1d.weight` and `.bias`, `x_proj.weight`, `dt_proj.weight` and `.bias`, `A_log`, `D`,
/// `out_proj.weight` (and the projection biases when configured). The initialization is the
/// official one: linear layers and conv1d U(±1/√fan_in), dt_proj.weight U(±R^{-1/2}), Δ
/// log-uniform in [0.001, 0.1] (floored at 1e-4) stored as dt_proj.bias = softplus⁻¹(Δ),
/// A_log = log(1 … N), D = 1; `A_log` and `D` in the SSM group (no weight decay); out_proj
/// feeds the residual stream (a Mamba backbone divides it by √layers). Step mode is
/// `MambaBlock/step(_:_:parameters:)`.
public final class MambaMixer<T: SafeTensorsScalar>: SequenceMixer, @unchecked Sendable {
    public typealias Scalar = T
    public let configuration: MambaConfiguration
    public let threads: Int
    public var width: Int { configuration.modelWidth }
    public var layout: SequenceLayout { .tokenMajor }
    public let parameterDeclarations: [ParameterDeclaration]
    let block: MambaBlock<T>

    public init(configuration c: MambaConfiguration, threads: Int? = nil) throws(SSMError) {
        configuration = c
        self.threads = threads ?? WorkerPool.onlineProcessorCount()
        block = try MambaBlock<T>(configuration: c, threads: self.threads)
        let (M, E, K, R) = (c.modelWidth, c.innerWidth, c.convWidth, c.dtRank)
        let N = c.state
        func fan(_ n: Int) -> ParameterInitialization { .uniform(bound: 1 / Double(n).squareRoot()) }
        let initialization: [String: (ParameterInitialization, ParameterGroup, Bool)] = [
            "in_proj.weight": (fan(M), .standard, false), "in_proj.bias": (fan(M), .standard, false),
            "conv1d.weight": (fan(K), .standard, false), "conv1d.bias": (fan(K), .standard, false),
            "x_proj.weight": (fan(E), .standard, false), "dt_proj.weight": (fan(R), .standard, false),
            "dt_proj.bias": (.custom { rng, count in
                (0 ..< count).map { _ in
                    let dt = max(1e-4, Double.exp(Double.random(in: Double.log(0.001) ..< Double.log(0.1), using: &rng)))
                    return dt + Double.log(-Double.expMinusOne(-dt))  // softplus⁻¹(dt)
                }
            }, .standard, false),
            "A_log": (.custom { _, count in (0 ..< count).map { Double.log(Double($0 % N + 1)) } }, .ssm, false),
            "D": (.constant(1), .ssm, false),
            "out_proj.weight": (fan(E), .standard, true), "out_proj.bias": (fan(E), .standard, false),
        ]
        parameterDeclarations = c.parameterShapes.map { name, shape in
            let (i, group, residual) = initialization[name]!
            return ParameterDeclaration(name, shape: shape, group: group, initialization: i, feedsResidual: residual)
        }
    }

    /// A convenience for the block's own model size: the official defaults (E = 2M, K = 4,
    /// R = ⌈M/16⌉) with state N.
    public convenience init(width: Int, state: Int, threads: Int? = nil) throws(SSMError) {
        try self.init(configuration: MambaConfiguration(modelWidth: width, state: state), threads: threads)
    }

    public final class Activations {
        let batch: Int, length: Int
        var block: MambaBlock<T>.Activations?
        init(batch: Int, length: Int) { (self.batch, self.length) = (batch, length) }
    }

    public func makeActivations(batch: Int, length: Int) throws(SSMError) -> Activations {
        guard batch >= 1, length >= 1 else { throw SSMError.value(argument: "batch, length", expected: "positive sizes, got (\(batch), \(length))") }
        return Activations(batch: batch, length: length)
    }

    /// The parameters as the block takes them.
    func parameters(_ p: ParameterView<T>) -> MambaParameters<T> {
        var values: [String: [T]] = [:]
        for (i, d) in parameterDeclarations.enumerated() { values[d.name] = p.array(i) }
        return MambaParameters(values: values)
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>, activations act: Activations,
                        into y: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        try checkSequence(y.count, "y", batch: act.batch, length: act.length)
        let (out, a) = try block.forward(Array(u), batch: act.batch, length: act.length, parameters: parameters(p))
        act.block = a
        for i in out.indices { y[i] = out[i] }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(_ dY: UnsafeBufferPointer<T>, input u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>,
                         activations act: Activations, dInput: UnsafeMutableBufferPointer<T>, gradients g: GradientView<T>) throws(SSMError) {
        guard let a = act.block else { throw SSMError.value(argument: "activations", expected: "the activations of a forward pass") }
        let (dHidden, d) = try block.backward(dOut: Array(dY), activations: a, parameters: parameters(p))
        for i in dHidden.indices { dInput[i] += dHidden[i] }
        for (i, declaration) in parameterDeclarations.enumerated() { g.accumulate(i, d[declaration.name]) }
    }

    public struct State {
        var state: MambaBlock<T>.State
        let parameters: MambaParameters<T>
    }

    public func makeState(batch: Int, length: Int, parameters p: ParameterView<T>) throws(SSMError) -> State {
        State(state: try block.makeState(batch: batch), parameters: parameters(p))
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func step(_ state: inout State, _ u: UnsafeBufferPointer<T>, parameters p: ParameterView<T>,
                     into y: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        let out = try block.step(&state.state, Array(u), parameters: state.parameters)
        for i in out.indices { y[i] = out[i] }
    }
}
