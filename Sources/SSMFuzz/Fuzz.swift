// The fuzz targets of SSMKit's readers: each takes arbitrary bytes and must return or throw a
// typed error, never crash, hang or allocate more than the bytes justify.
//
// Built by scripts/fuzz.sh with -sanitize=fuzzer,address and -D FUZZING, this is a libFuzzer
// binary (libFuzzer's main calls LLVMFuzzerTestOneInput). Built normally, it replays files:
// `SSMFuzz TARGET FILE…` runs each file through the target once (to replay a finding).
#if canImport(Glibc)
import Glibc
#endif
import SSMKit
import SSMLanguage
import SSMTraining

/// Writes `text` to standard error.
func complain(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// The readers under test.
enum FuzzTarget: String, CaseIterable {
    /// A safetensors file: header and data, every tensor read as Float and as integers.
    case safetensors
    /// A .npy file: the header, then every channel read.
    case npy
    /// The JSON parser, strict and with Python's non-finite literals.
    case json
    /// config.json → a language model's configuration (Mamba, Mamba-2, mamba_ssm).
    case config
    /// tokenizer.json → a tokenizer, then an encode and a decode.
    case tokenizer
    /// A checkpoint's model.safetensors → a model configuration and its parameters.
    case checkpoint
}

/// A scratch file for readers that take paths, in memory when /dev/shm exists.
let scratch: String = {
    let folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(folder)/ssm-fuzz-\(getpid())"
}()

/// Writes `bytes` to the scratch file with `suffix`; nil (the input is skipped) if it cannot.
func writeScratch(_ bytes: [UInt8], suffix: String) -> String? {
    let path = scratch + suffix
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    return written == bytes.count ? path : nil
}

/// Runs one input through `target`. Every error is expected; only a crash is a finding.
func run(_ target: FuzzTarget, _ bytes: [UInt8]) {
    switch target {
    case .safetensors:
        guard let file = try? SafeTensorsFile(bytes: bytes) else { return }
        for name in file.names {
            _ = try? file.tensor(name, as: Float.self)
            _ = try? file.integers(name)
        }
    case .npy:
        guard let path = writeScratch(bytes, suffix: ".npy"), let file = try? NPYFile(reading: path) else { return }
        let count = file.length
        guard count <= 1 << 20 else { return }
        var row = [Double](repeating: 0, count: count)
        for channel in 0 ..< min(file.channels, 64) {
            row.withUnsafeMutableBufferPointer { out in _ = try? file.read(channel: channel, start: 0, count: count, into: out.baseAddress!) }
        }
    case .json:
        _ = try? JSONValue.parse(bytes)
        _ = try? JSONValue.parse(bytes, nonFiniteNumbers: true)
    case .config:
        guard let path = writeScratch(bytes, suffix: ".json") else { return }
        _ = try? LanguageModelConfiguration(contentsOf: path)
    case .tokenizer:
        guard let path = writeScratch(bytes, suffix: ".json"), let tokenizer = try? Tokenizer(contentsOf: path) else { return }
        let ids = tokenizer.encode("Hello, wörld 123 \n\n  <|endoftext|> 日本語 🙂")
        _ = try? tokenizer.decode(ids)
    case .checkpoint:
        guard let path = writeScratch(bytes, suffix: ".safetensors") else { return }
        _ = try? Checkpoint.read(directory: path, as: Float.self)
    }
}

/// The target named by SSM_FUZZ_TARGET (libFuzzer passes no arguments of ours).
let fuzzTarget: FuzzTarget = {
    guard let name = getenv("SSM_FUZZ_TARGET").map({ String(cString: $0) }), let t = FuzzTarget(rawValue: name) else {
        complain("SSMFuzz: set SSM_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n")
        exit(64)
    }
    return t
}()

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    run(fuzzTarget, size == 0 ? [] : Array(UnsafeBufferPointer(start: data!, count: size)))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The program's entry (SwiftPM links an executable's `main` to `<module>_main`): libFuzzer's
/// driver, with the arguments as given.
@_cdecl("SSMFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc, vector = argv
    _ = fuzzTarget
    return runDriver(&count, &vector, fuzzOne)
}
#else
@main
struct Replay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            complain("usage: SSMFuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE…\n")
            exit(64)
        }
        for path in arguments.dropFirst() {
            guard let bytes = try? FileIO.readAll(path) else { complain("SSMFuzz: cannot read \(path)\n"); exit(66) }
            run(target, bytes)
        }
        unlink(scratch + ".npy"); unlink(scratch + ".json"); unlink(scratch + ".safetensors")
    }
}
#endif
