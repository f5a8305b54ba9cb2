import ArgumentParser
import SSMKit
#if canImport(Glibc)
import Glibc
#endif

/// `ssm bench`: throughput measurements.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput; each row reports the median and spread over repeats.",
        subcommands: [BenchConv.self, BenchKernel.self, BenchScan.self, BenchSSD.self, BenchStep.self, BenchTrain.self, BenchLM.self]
    )
}

/// Options shared by the `ssm bench` subcommands.
struct BenchOptions: ParsableArguments {
    @Option(name: .long, help: "Batch sizes: one value or a comma-separated list.")
    var batch: LengthList = LengthList([1])

    @Option(name: .long, help: "Channels H: one value or a comma-separated list (default 256; ssd: 24 heads).")
    var channels: LengthList?

    @Option(name: .long, help: "Lengths L: a value, a list (1024,4096) or a range of powers of two (2^12...2^20).")
    var length: LengthList = LengthList([4096])

    @Option(name: .long, help: "float32 or float64.")
    var precision: Precision = .float32

    @Option(name: .long, help: "Worker threads (default: all online processors).")
    var threads: Int?

    @Option(name: .long, help: "Timed repeats per row (after one untimed warm-up).")
    var repeats: Int = 5

    @Option(name: .long, help: "FFTW planner effort: estimate, measure, patient or exhaustive.")
    var effort: FFTPlannerEffort = .measure

    @Option(name: .long, help: "FFTW wisdom file to load first (if it exists) and save back after (default with --effort measure or more: the wisdom cache, see `ssm wisdom path`).")
    var wisdom: String?

    @Flag(name: .long, help: "Print one JSON object per row and line.")
    var json = false

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats: expected a positive count, got \(repeats)") }
        if let threads, threads < 1 { throw ValidationError("--threads: expected a positive count, got \(threads)") }
        for (name, list) in [("--batch", batch), ("--channels", channels ?? LengthList([1])), ("--length", length)]
        where list.values.contains(where: { $0 < 1 }) {
            throw ValidationError("\(name): expected positive values, got \(list.values)")
        }
    }
}

extension BenchOptions {
    /// Runs `body` between loading FFTW wisdom and saving it back: from and to `--wisdom`, else
    /// the wisdom cache when the effort measures (estimate plans need no wisdom).
    func withWisdom(_ body: () throws -> Void) throws {
        let path = wisdom ?? (effort == .estimate ? nil : FFT.wisdomCachePath)
        guard let path else { return try body() }
        if access(path, F_OK) == 0 { try FFT.importWisdom(from: path) }
        try body()
        if wisdom == nil { try FFT.saveWisdomCache() } else { try FFT.exportWisdom(to: path) }
    }
}

extension BenchOptions {
    /// Prints `header` (unless --json), then calls `body(scalar, B, H, L)` for every shape of
    /// the lists: lengths outermost, then batch sizes, then channels. A bench without a batch
    /// or length axis passes `batches: false` or `lengths: false` (and ignores that argument);
    /// `defaultChannels` stands when --channels is not given.
    func forEachRow<R: BenchRows>(header: String, batches: Bool = true, lengths: Bool = true, defaultChannels: [Int] = [256], _ rows: R) throws {
        if !json { print(header) }
        for L in lengths ? length.values : [0] {
            for B in batches ? batch.values : [0] {
                for H in channels?.values ?? defaultChannels {
                    // The scalar type is static in each branch, so the row and the library
                    // code it calls run specialized (through `any SSMScalar.Type` they would
                    // run the generic code, several times slower).
                    switch precision {
                    case .float32: try rows.measureRow(Float.self, B: B, H: H, L: L)
                    case .float64: try rows.measureRow(Double.self, B: B, H: H, L: L)
                    }
                }
            }
        }
    }
}

/// A benchmark that measures one row per (B, H, L) of its shape lists, in either precision.
protocol BenchRows {
    func measureRow<T: SSMScalar>(_: T.Type, B: Int, H: Int, L: Int) throws
}

enum Precision: String, ExpressibleByArgument, CaseIterable {
    case float32, float64
}


/// A list of positive integers: `4096`, `1024,4096`, or `2^10...2^14` (every power between).
struct LengthList: ExpressibleByArgument, Equatable {
    var values: [Int]
    init(_ values: [Int]) { self.values = values }

    init?(argument: String) {
        func power(_ s: Substring) -> Int? {
            let parts = s.split(separator: "^")
            if parts.count == 2, parts[0] == "2", let e = Int(parts[1]), (0 ... 40).contains(e) { return 1 << e }
            return parts.count == 1 ? Int(s) : nil
        }
        let range = argument.split(separator: "...", omittingEmptySubsequences: false)
        if range.count == 2 {
            guard let lo = power(range[0]), let hi = power(range[1]), lo >= 1, lo <= hi,
                  lo & (lo - 1) == 0, hi & (hi - 1) == 0 else { return nil }
            values = Array(sequence(first: lo) { $0 < hi ? $0 * 2 : nil })
        } else {
            let items = argument.split(separator: ",").map(power)
            guard !items.isEmpty, items.allSatisfy({ $0 != nil }) else { return nil }
            values = items.map { $0! }
        }
    }
}

/// Median, minimum and maximum of some timings, in seconds.
struct Timing {
    var median: Double
    var min: Double
    var max: Double

    init(_ samples: [Double]) {
        let s = samples.sorted()
        median = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        min = s.first ?? 0
        max = s.last ?? 0
    }
}

/// Seconds taken by `body`, on the monotonic clock.
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return (clock.now - start).seconds
}

/// A JSON object with keys in the order given; values are numbers, strings (escaped), booleans
/// or arrays of integers.
func jsonLine(_ fields: [(String, Any)]) -> String {
    let body = fields.map { key, value -> String in
        let v: String = switch value {
        case let s as String: s.jsonQuoted
        case let ids as [Int]: "[" + ids.map(String.init).joined(separator: ",") + "]"
        case let rows as [[Int]]: "[" + rows.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]"
        case let texts as [String]: "[" + texts.map(\.jsonQuoted).joined(separator: ",") + "]"
        case let b as Bool: b ? "true" : "false"
        case let d as Double: d.isFinite ? "\(d)" : "null"
        default: "\(value)"
        }
        return "\"\(key)\":\(v)"
    }
    return "{" + body.joined(separator: ",") + "}"
}


/// `x` with `places` decimals, right-aligned in `width` characters.
func column(_ x: Double, _ width: Int, _ places: Int) -> String {
    let s = formatFixed(x, places)
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

/// `n` right-aligned in `width` characters.
func column(_ n: Int, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - "\(n)".count)) + "\(n)"
}

extension String {
    /// This string padded with spaces on the right to `width` characters.
    func padding(to width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
