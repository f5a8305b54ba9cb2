extension SelectiveScan {
    /// The benchmark bound of the forward pass: the B·D·L·N exponentials e^{dt·A} the scan
    /// must take, with the same vectorized exponential, rows and threads, and nothing else
    /// (raw delta stands in for dt). Returns a sum of them so that none can be skipped.
    /// Checks only the sizes it reads: it times arithmetic, not validation.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func runExponentialsOnly(_ x: SelectiveScanInputs<T>) throws(SSMError) -> T {
        if x.delta.count != shape.sequenceCount { throw SSMError.shape(argument: "delta", expected: "(B, D, L)", actual: [x.delta.count]) }
        if x.a.count != shape.channels * shape.state { throw SSMError.shape(argument: "A", expected: "(D, N)", actual: [x.a.count]) }
        let (D, L, N) = (shape.channels, shape.length, shape.state)
        let rows = shape.batch * D
        let workers = max(1, min(threads, rows))
        let w = Workspace<T>()
        let sums = SendableBox(w.zeros(rows))
        withBaseAddresses([x.delta, x.a]) { p in
            let (delta, a) = (SendableBox(UnsafeMutablePointer(mutating: p[0]!)), SendableBox(UnsafeMutablePointer(mutating: p[1]!)))
            WorkerPool.shared.runTasks(rows, workers: workers) { row, _ in
                sums.value[row] = T.exponentialsOnly(dt: delta.value + row * L, a: a.value + (row % D) * N, length: L, state: N)
            }
        }
        return (0 ..< rows).reduce(0) { $0 + sums.value[$1] }
    }
}
