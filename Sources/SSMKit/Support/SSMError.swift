/// An error a caller can cause: a tensor of the wrong shape, a value out of its domain, an
/// option that cannot be honoured. Each case names the argument and says what was expected.
public enum SSMError: Error, Equatable, CustomStringConvertible {
    /// `argument` has shape `actual`; `expected` describes the shape it must have.
    case shape(argument: String, expected: String, actual: [Int])
    /// `argument` holds a value outside its domain (a NaN, an infinity, a negative length …).
    case value(argument: String, expected: String)
    /// An option or combination of options that cannot be honoured.
    case option(name: String, expected: String)
    /// A required tensor or argument is absent.
    case missing(argument: String, expected: String)
    /// A tensor that the operation does not take.
    case unexpected(argument: String, expected: String)

    public var description: String {
        switch self {
        case let .shape(argument, expected, actual):
            "\(argument): shape (\(actual.map(String.init).joined(separator: ", "))), expected \(expected)"
        case let .value(argument, expected): "\(argument): expected \(expected)"
        case let .option(name, expected): "\(name): expected \(expected)"
        case let .missing(argument, expected): "\(argument): missing, expected \(expected)"
        case let .unexpected(argument, expected): "\(argument): not an input of this operation (\(expected))"
        }
    }
}

extension SSMError {
    /// The same error with its argument or option renamed through `names` (unlisted names are
    /// kept): how a command-line tool reports a library argument under the flag that set it.
    package func renamingArguments(_ names: [String: String]) -> SSMError {
        func rename(_ name: String) -> String { names[name] ?? name }
        return switch self {
        case let .shape(argument, expected, actual): .shape(argument: rename(argument), expected: expected, actual: actual)
        case let .value(argument, expected): .value(argument: rename(argument), expected: expected)
        case let .option(name, expected): .option(name: rename(name), expected: expected)
        case let .missing(argument, expected): .missing(argument: rename(argument), expected: expected)
        case let .unexpected(argument, expected): .unexpected(argument: rename(argument), expected: expected)
        }
    }
}
