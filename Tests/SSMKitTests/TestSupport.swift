@testable import SSMKit

/// The tests' seeded generator: every test draws the same numbers on every run.
typealias SeededGenerator = SplitMix64

extension Array where Element: BinaryFloatingPoint, Element.RawSignificand: FixedWidthInteger {
    /// `count` values uniform in [-1, 1).
    static func random(_ count: Int, _ rng: inout SeededGenerator) -> [Element] {
        (0 ..< count).map { _ in Element.random(in: -1 ..< 1, using: &rng) }
    }
}

/// max|a − b| / max|b| (max|a − b| when b is all zero), in Double.
func relativeError<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(_ a: [A], _ b: [B]) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count) elements")
    var diff = 0.0, scale = 0.0
    for (x, y) in zip(a, b) {
        diff = Swift.max(diff, abs(Double(x) - Double(y)))
        scale = Swift.max(scale, abs(Double(y)))
    }
    return scale > 0 ? diff / scale : diff
}

func maxAbs<T: BinaryFloatingPoint>(_ a: [T]) -> Double { a.reduce(0) { Swift.max($0, abs(Double($1))) } }

func dot<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) -> Double {
    zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

/// Tests plan with FFTW_ESTIMATE: instant, and the accuracy claims hold for any plan.
func useTestPlanner() { FFT.defaultEffort = .estimate }
