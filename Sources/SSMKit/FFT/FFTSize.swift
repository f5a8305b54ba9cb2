/// FFT sizes that FFTW transforms fastest.
public enum FFTSize {
    /// The smallest n ≥ `minimum` of the form 2^a · 3^b · 5^c · 7^d (FFTW has hard-coded
    /// codelets for these radices, so such sizes run at close to power-of-two speed).
    ///
    /// `minimum` must be in 0 … 2^62 (the answer is at most twice it).
    ///
    /// Complexity: O(log⁴ minimum).
    public static func fast(atLeast minimum: Int) -> Int {
        precondition(minimum >= 0 && minimum <= 1 << 62, "FFTSize.fast: minimum \(minimum) outside 0 … 2^62")
        if minimum <= 1 { return 1 }
        var best = Int.max
        var p7 = 1
        while p7 < best {
            var p5 = p7
            while p5 < best {
                var p3 = p5
                while p3 < best {
                    // Smallest power of two times p3 that reaches `minimum`.
                    var n = p3
                    while n < minimum { n <<= 1 }
                    best = min(best, n)
                    if p3 >= minimum { break }
                    p3 *= 3
                }
                if p5 >= minimum { break }
                p5 *= 5
            }
            if p7 >= minimum { break }
            p7 *= 7
        }
        return best
    }

    /// Whether `n` has no prime factor above 7.
    public static func isFast(_ n: Int) -> Bool {
        guard n >= 1 else { return false }
        var m = n
        for p in [2, 3, 5, 7] { while m % p == 0 { m /= p } }
        return m == 1
    }
}
