import Testing
import SSMKit
@testable import SSMTraining

/// Seeded uniform values in [−scale, scale).
func randomValues(_ count: Int, seed: UInt64, scale: Double = 1) -> [Double] {
    var rng = SplitMix64(seed: seed)
    return (0 ..< count).map { _ in scale * Double.random(in: -1 ..< 1, using: &rng) }
}

/// Checks `analytic` against central differences of `loss` bumped at each index; the
/// tolerance is relative to the gradient's largest entry (step 1e-6 in Double: truncation
/// ~1e-12, rounding ~1e-10 of the loss).
/// `scale` overrides the gradient's own largest entry (a whole model's gradients are compared
/// at the scale of the largest of all of them: the central difference's rounding noise,
/// ~1e-16·|loss|/1e-6, is the same for every parameter).
func expectGradient(_ name: String, _ analytic: [Double], tolerance: Double = 1e-6, indices: [Int]? = nil, scale given: Double? = nil,
                    _ loss: (Int, Double) throws -> Double) rethrows {
    let eps = 1e-6
    let scale = given ?? max(1e-3, analytic.reduce(0) { max($0, abs($1)) })
    for i in indices ?? Array(analytic.indices) {
        let fd = (try loss(i, eps) - loss(i, -eps)) / (2 * eps)
        #expect(abs(fd - analytic[i]) <= tolerance * scale, "d_\(name)[\(i)]: analytic \(analytic[i]) vs finite difference \(fd)")
    }
}

/// Σ w ⊙ y.
func weightedSum(_ w: [Double], _ y: [Double]) -> Double { zip(w, y).reduce(0) { $0 + $1.0 * $1.1 } }

/// One mixer's backward against central finite differences in Double: dU and every declared
/// parameter, for Σ dY ⊙ y with random u and dY; then a backward into buffers that already
/// hold values, which it must add to (+=).
func expectMixerGradients<M: SequenceMixer>(_ mixer: M, _ p: ParameterSet<Double>, batch B: Int, length L: Int,
                                            seed: UInt64) throws where M.Scalar == Double {
    let n = B * L * mixer.width
    let u = randomValues(n, seed: seed), dY = randomValues(n, seed: seed + 1)
    let (_, act) = try mixer.forward(u, batch: B, length: L, parameters: p)
    let (dU, g) = try mixer.backward(dY, input: u, activations: act, parameters: p)
    func loss(_ u: [Double], _ q: ParameterSet<Double>) throws -> Double { weightedSum(dY, try mixer.forward(u, batch: B, length: L, parameters: q).y) }
    try expectGradient("u", dU) { i, e in var v = u; v[i] += e; return try loss(v, p) }
    for name in p.names {
        try expectGradient(name, g[name]) { i, e in
            var q = p
            var v = q[name]; v[i] += e; q[name] = v
            return try loss(u, q)
        }
    }
    // The contract: backward adds into the caller's buffers. Filled with other values first,
    // they come back holding those values plus the gradients.
    let layout = ParameterLayout(mixer.parameterDeclarations)
    let before = (u: randomValues(n, seed: seed + 2), g: randomValues(p.storage.count, seed: seed + 3))
    var (dU2, g2) = (before.u, before.g)
    try dY.withUnsafeBufferPointer { dY in
        try u.withUnsafeBufferPointer { u in
            try p.storage.withUnsafeBufferPointer { pb in
                try dU2.withUnsafeMutableBufferPointer { d in
                    try g2.withUnsafeMutableBufferPointer { gb in
                        try mixer.backward(dY, input: u, parameters: ParameterView(base: pb.baseAddress!, layout: layout), activations: act,
                                           dInput: d, gradients: GradientView(base: gb.baseAddress!, layout: layout))
                    }
                }
            }
        }
    }
    #expect(relativeError(zip(dU2, before.u).map { $0 - $1 }, dU) <= 1e-12, "dU does not accumulate")
    #expect(relativeError(zip(g2, before.g).map { $0 - $1 }, g.storage) <= 1e-12, "the parameter gradients do not accumulate")
}

/// max |a − b| over max |b| (the difference itself when b is zero).
func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count) elements")
    let scale = b.reduce(0) { max($0, abs($1)) }
    let diff = zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    return scale > 0 ? diff / scale : diff
}
