/// The extents of one SSD scan (Mamba-2's state space duality layer). Legend: B batch ·
/// L length · H heads · P head dimension · G groups · N state. Head h reads group
/// g = h / (H / G) of B and C.
///
/// Packed layouts (those of the official `mamba_chunk_scan_combined`): x and out (B, L, H, P),
/// dt (B, L, H), A (H), B and C (B, L, G, N), D (H) or (H, P), dt_bias (H), states
/// (B, H, P, N).
public struct SSDShape: Hashable, Sendable {
    public let batch: Int
    public let length: Int
    public let heads: Int
    public let headDimension: Int
    public let groups: Int
    public let state: Int

    /// - Throws: ``SSMError`` when an extent is not positive or G does not divide H.
    public init(batch: Int, length: Int, heads: Int, headDimension: Int, groups: Int = 1, state: Int) throws(SSMError) {
        for (name, value) in [("batch", batch), ("length", length), ("heads", heads), ("head_dim", headDimension),
                              ("groups", groups), ("state", state)] where value < 1 {
            throw SSMError.value(argument: name, expected: "a positive extent, got \(value)")
        }
        guard heads % groups == 0 else {
            throw SSMError.value(argument: "groups", expected: "a group count that divides the \(heads) heads, got \(groups)")
        }
        // x (B·L·H·P), the states (B·H·P·N) and B, C (B·L·G·N ≤ B·L·H·N) must be counts that exist.
        guard elementCount([batch, length, heads, headDimension]) != nil, elementCount([batch, heads, headDimension, state]) != nil,
              elementCount([batch, length, heads, state]) != nil else {
            throw SSMError.value(argument: "batch, length, heads, head_dim, state",
                                 expected: "extents whose tensors' element counts are representable, got (\(batch), \(length), \(heads), \(headDimension), \(state))")
        }
        (self.batch, self.length, self.heads, self.headDimension, self.groups, self.state) = (batch, length, heads, headDimension, groups, state)
    }

    /// B·L·H·P: the count of x and out.
    public var sequenceCount: Int { batch * length * heads * headDimension }
    /// B·L·H: the count of dt.
    public var timeStepCount: Int { batch * length * heads }
    /// B·L·G·N: the count of B and C.
    public var projectionCount: Int { batch * length * groups * state }
    /// B·H·P·N: the count of a state.
    public var stateCount: Int { batch * heads * headDimension * state }
    /// H / G: the heads that share one group of B and C.
    public var headsPerGroup: Int { heads / groups }

    /// The shape with another batch and length (a step is length 1).
    public func with(batch: Int? = nil, length: Int? = nil) throws(SSMError) -> SSDShape {
        try SSDShape(batch: batch ?? self.batch, length: length ?? self.length, heads: heads, headDimension: headDimension,
                     groups: groups, state: state)
    }
}

/// How the raw dt becomes the step size of the discretization, as the official layer does:
/// dt′ = clamp(softplus(dt + dt_bias), minimum, maximum) (softplus when ``softplus``; the
/// clamp when the limits are not (0, ∞), the official `dt_limit` / `time_step_limit`).
public struct SSDTimeStep: Hashable, Sendable {
    public var softplus: Bool
    public var minimum: Double
    public var maximum: Double

    /// - Throws: ``SSMError`` unless 0 ≤ minimum ≤ maximum (maximum may be +∞).
    public init(softplus: Bool = true, minimum: Double = 0, maximum: Double = .infinity) throws(SSMError) {
        guard minimum >= 0, minimum.isFinite, maximum >= minimum, !maximum.isNaN else {
            throw SSMError.value(argument: "dt_limit", expected: "0 ≤ minimum ≤ maximum, got (\(minimum), \(maximum))")
        }
        (self.softplus, self.minimum, self.maximum) = (softplus, minimum, maximum)
    }

    /// The official layer's: softplus, no clamp.
    public static let official = SSDTimeStep(checked: true, minimum: 0, maximum: .infinity)

    private init(checked softplus: Bool, minimum: Double, maximum: Double) {
        (self.softplus, self.minimum, self.maximum) = (softplus, minimum, maximum)
    }

    /// Whether the limits clamp anything (they are not the official default (0, ∞)).
    public var clamps: Bool { minimum > 0 || maximum < .infinity }
}

/// The inputs of an SSD scan as arrays in ``SSDShape``'s packed layouts. Optional inputs are
/// absent when nil: D (skip term; (H) or (H, P)), dt_bias, initial_states (zero).
public struct SSDInputs<T: Sendable>: Sendable {
    public var x: [T]
    public var dt: [T]
    public var a: [T]
    public var b: [T]
    public var c: [T]
    public var d: [T]?
    public var dtBias: [T]?
    public var initialStates: [T]?

    public init(x: [T], dt: [T], a: [T], b: [T], c: [T], d: [T]? = nil, dtBias: [T]? = nil, initialStates: [T]? = nil) {
        (self.x, self.dt, self.a, self.b, self.c, self.d, self.dtBias, self.initialStates) = (x, dt, a, b, c, d, dtBias, initialStates)
    }
}

/// The gradients of an SSD scan's inputs, in their layouts (nil for inputs not given).
public struct SSDGradients<T: Sendable>: Sendable {
    public var x: [T]
    public var dt: [T]
    public var a: [T]
    public var b: [T]
    public var c: [T]
    public var d: [T]?
    public var dtBias: [T]?
    public var initialStates: [T]?
}

/// The inputs of an SSD scan on the caller's buffers. x, dt, B and C are read token by token:
/// token (b, t) starts at (b·L + t)·stride, head h's P values of x at +h·P, its dt at +h,
/// group g's N values of B and C at +g·N. The packed strides are H·P, H, G·N; larger ones
/// read columns of a wider matrix (as Mamba-2's in_proj and conv outputs).
public struct SSDOperands<T>: @unchecked Sendable {
    public var x: UnsafePointer<T>, xStride: Int
    public var dt: UnsafePointer<T>, dtStride: Int
    public var a: UnsafePointer<T>
    public var b: UnsafePointer<T>, bStride: Int
    public var c: UnsafePointer<T>, cStride: Int
    /// D: (H), or (H, P) when ``dHasHeadDimension``.
    public var d: UnsafePointer<T>?
    public var dHasHeadDimension: Bool
    public var dtBias: UnsafePointer<T>?
    /// (B, H, P, N), zero when nil.
    public var initialStates: UnsafePointer<T>?

    public init(x: UnsafePointer<T>, xStride: Int, dt: UnsafePointer<T>, dtStride: Int, a: UnsafePointer<T>,
                b: UnsafePointer<T>, bStride: Int, c: UnsafePointer<T>, cStride: Int, d: UnsafePointer<T>? = nil,
                dHasHeadDimension: Bool = false, dtBias: UnsafePointer<T>? = nil, initialStates: UnsafePointer<T>? = nil) {
        (self.x, self.xStride, self.dt, self.dtStride, self.a) = (x, xStride, dt, dtStride, a)
        (self.b, self.bStride, self.c, self.cStride) = (b, bStride, c, cStride)
        (self.d, self.dHasHeadDimension, self.dtBias, self.initialStates) = (d, dHasHeadDimension, dtBias, initialStates)
    }
}

/// Where an SSD backward pass adds its gradients (every buffer is added to, never
/// overwritten), in the layouts and strides of the ``SSDOperands`` they belong to. Gradients
/// left nil are not computed (their operands must then be absent too, for D, dt_bias and the
/// initial states).
public struct SSDGradientBuffers<T>: @unchecked Sendable {
    public var x: UnsafeMutablePointer<T>, xStride: Int
    public var dt: UnsafeMutablePointer<T>, dtStride: Int
    public var a: UnsafeMutablePointer<T>
    public var b: UnsafeMutablePointer<T>, bStride: Int
    public var c: UnsafeMutablePointer<T>, cStride: Int
    public var d: UnsafeMutablePointer<T>?
    public var dtBias: UnsafeMutablePointer<T>?
    public var initialStates: UnsafeMutablePointer<T>?

    public init(x: UnsafeMutablePointer<T>, xStride: Int, dt: UnsafeMutablePointer<T>, dtStride: Int, a: UnsafeMutablePointer<T>,
                b: UnsafeMutablePointer<T>, bStride: Int, c: UnsafeMutablePointer<T>, cStride: Int, d: UnsafeMutablePointer<T>? = nil,
                dtBias: UnsafeMutablePointer<T>? = nil, initialStates: UnsafeMutablePointer<T>? = nil) {
        (self.x, self.xStride, self.dt, self.dtStride, self.a) = (x, xStride, dt, dtStride, a)
        (self.b, self.bStride, self.c, self.cStride) = (b, bStride, c, cStride)
        (self.d, self.dtBias, self.initialStates) = (d, dtBias, initialStates)
    }
}
