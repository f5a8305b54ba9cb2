// SSMKit: the numerical engine for structured state space sequence models on the CPU.
//
// Dimension legend used across the engine:
//   B batch · H channels · C output channels (kernel copies) · L length · Lk kernel length
//   n FFT size · N state · D inner · G groups
//
// Layout: every tensor is contiguous, row-major, channels-first (`u: (B, H, L)`).

@_exported import ComplexModule
@_exported import RealModule
