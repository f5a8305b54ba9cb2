import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Refuses sizes that cannot run on this machine before anything is allocated: `terms` are
/// element counts (products of extents) times bytes per element whose sum is a lower bound of
/// what the command must hold in memory at once. An overflowing product, or a sum above the
/// machine's physical memory, is refused naming `flags`; a run that might fit is never refused.
func requireMemory(_ terms: [(extents: [Int], bytes: Int)], flags: String) throws {
    let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    var total = 0.0
    for term in terms {
        var product = term.bytes
        for e in term.extents {
            let (p, overflow) = product.multipliedReportingOverflow(by: max(e, 0))
            guard !overflow else { throw ValidationError("\(flags): sizes too large for any machine (their product overflows)") }
            product = p
        }
        total += Double(product)
    }
    guard physical <= 0 || total <= physical else {
        throw ValidationError("\(flags): these sizes need at least \(formatFixed(total / 1e9, 1)) GB of memory; this machine has \(formatFixed(physical / 1e9, 1)) GB")
    }
}
