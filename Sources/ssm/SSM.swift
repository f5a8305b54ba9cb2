import ArgumentParser
import CSSMKitProcess
import SSMKit
import SSMTraining
import SSMLanguage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ssm`: the SSMKit command-line tool.
@main
struct SSM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssm",
        abstract: "Structured state space sequence models (S4, S4D, Mamba, Mamba-2) on the CPU: train, run, generate.",
        version: "ssm \(BuildInfo.version) (SIMD \(BuildInfo.simdPath); \(BuildInfo.blas))",
        subcommands: [Train.self, Conv.self, Eval.self, Verify.self, Bench.self, Crosscheck.self, Wisdom.self,
                      Generate.self, Perplexity.self, Tokenize.self]
    )

    /// Parses and runs the command. Errors print as one line on stderr (`ssm: <message>`) with a
    /// non-zero exit status; `--help` prints the usual help and exits 0.
    static func main() {
        // Freed activations stay in the heap (see CSSMKitProcess): about 5% of a training step.
        _ = ssm_keep_freed_memory()
        do {
            try checkOperationName(Array(CommandLine.arguments.dropFirst()))
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // --help and --version print and exit 0; a command that has already printed its
            // verdict ends with a bare exit code.
            if exitCode(for: error) == .success || error is ExitCode { exit(withError: error) }
            printErrorLine(oneLineMessage(for: error))
            let code: Int32 = exitCode(for: error) == .validationFailure ? 64 : 1
            // Under mpirun, one failing rank ends every rank (never a job left waiting).
            MPICommunicator.abortJobIfJoined(code)
            exit(withError: ExitCode(code))
        }
    }
}

/// The first line of the message for `error`: SSMKit's own errors describe themselves (naming
/// the argument and what was expected); argument-parser errors use its message.
func oneLineMessage(for error: any Error) -> String {
    let text: String = switch error {
    case let e as SSMError: e.description
    case let e as SafeTensorsError: e.description
    case let e as WisdomError: e.description
    case let e as FileError: e.description
    case let e as PretrainedError: e.description
    default: SSM.message(for: error)
    }
    return text.split(separator: "\n").first.map(String.init) ?? "\(error)"
}

/// Writes `ssm: line` and a newline to standard error.
func printErrorLine(_ line: String) {
    let bytes = Array("ssm: \(line)\n".utf8)
    bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
}

/// Refuses `ssm eval NAME` for an unknown NAME with a message that lists the operations
/// (argument-parser would otherwise report the first option it cannot place).
func checkOperationName(_ arguments: [String]) throws {
    guard arguments.count >= 2, arguments[0] == Eval.configuration.commandName ?? "eval",
          !arguments[1].hasPrefix("-") else { return }
    let known = Eval.configuration.subcommands.compactMap { $0.configuration.commandName }
    if !known.contains(arguments[1]) {
        throw SSMError.option(name: "eval \(arguments[1])",
                              expected: "a known operation: \(known.joined(separator: ", "))")
    }
}

extension FFTPlannerEffort: ExpressibleByArgument {}
