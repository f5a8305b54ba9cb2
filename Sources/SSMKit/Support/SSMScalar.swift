/// The scalar bound of models and of everything above the engine: `Float` or `Double`, with
/// FFTs, convolutions and GEMMs (``FFTScalar``), the selective scan's rows
/// (``SelectiveScanScalar``), the step engine's rows (``StepRowScalar``) and a safetensors
/// dtype (``SafeTensorsScalar``). Each layer of the engine is generic over the narrowest of
/// these it needs, so that none depends on a layer above it.
public protocol SSMScalar: SelectiveScanScalar, StepRowScalar, SafeTensorsScalar {}

extension Float: SSMScalar {}
extension Double: SSMScalar {}
