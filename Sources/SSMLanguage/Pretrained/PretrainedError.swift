import SSMKit

/// An error loading or running a pretrained model or tokenizer. Every case names the file (or
/// argument) at fault and what was expected there.
public enum PretrainedError: Error, Equatable, CustomStringConvertible {
    /// A file or folder that cannot be read.
    case unreadable(path: String, reason: String)
    /// A field of a JSON file (config.json, tokenizer.json, an index) that is missing, malformed
    /// or holds a value this library does not support.
    case field(file: String, field: String, expected: String)
    /// A tensor of a checkpoint that is missing, misshapen, unexpected or not finite.
    case tensor(file: String, tensor: String, expected: String)
    /// A safetensors file that cannot be parsed.
    case safetensors(SafeTensorsError)
    /// An argument of a call (token ids, options, a state of the wrong model).
    case argument(name: String, expected: String)
    /// A file that cannot be written (nothing is left under its name).
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "\(path): cannot be read: \(reason)"
        case let .field(file, field, expected): "\(file): \(field): expected \(expected)"
        case let .tensor(file, tensor, expected): "\(file): tensor \(tensor): expected \(expected)"
        case let .safetensors(error): error.description
        case let .argument(name, expected): "\(name): expected \(expected)"
        case let .unwritable(path, reason): "\(path): cannot be written: \(reason)"
        }
    }

    /// An engine error as an argument error.
    init(_ error: SSMError) {
        switch error {
        case let .shape(argument, expected, actual):
            self = .argument(name: argument, expected: "\(expected), got shape (\(actual.map(String.init).joined(separator: ", ")))")
        case let .value(argument, expected), let .missing(argument, expected), let .unexpected(argument, expected):
            self = .argument(name: argument, expected: expected)
        case let .option(name, expected): self = .argument(name: name, expected: expected)
        }
    }
}

/// Runs `body`, reporting an engine error as a ``PretrainedError``.
func rethrowingEngine<R>(_ body: () throws(SSMError) -> R) throws(PretrainedError) -> R {
    do { return try body() } catch { throw PretrainedError(error) }
}

/// A JSON file read whole and parsed, for configuration-like files.
struct JSONFile {
    let path: String
    let root: JSONValue
    /// The file's size: what bounds the tables a reader may build from it.
    let byteCount: Int

    /// `nonFiniteNumbers`: accept Python's `Infinity`, `-Infinity` and `NaN` literals.
    init(_ path: String, nonFiniteNumbers: Bool = false) throws(PretrainedError) {
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path) } catch { throw .unreadable(path: path, reason: error.reason) }
        do { root = try JSONValue.parse(bytes, nonFiniteNumbers: nonFiniteNumbers) } catch {
            throw .field(file: path, field: "(file)", expected: "valid JSON (\(error.reason) at byte \(error.offset))")
        }
        guard root.object != nil else { throw .field(file: path, field: "(file)", expected: "a JSON object") }
        self.path = path
        byteCount = bytes.count
    }
}
