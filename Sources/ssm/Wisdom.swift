import ArgumentParser
import SSMKit

/// `ssm wisdom`: where the FFTW wisdom cache is, and clearing it.
struct Wisdom: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The FFTW wisdom cache that `ssm bench --effort measure` (or more) loads and saves.",
        discussion: """
        The cache is $SSMKIT_CACHE_DIR/fftw-wisdom, else $XDG_CACHE_HOME/ssmkit/fftw-wisdom, else \
        ~/.cache/ssmkit/fftw-wisdom. Estimate plans (the default everywhere else) need no wisdom.
        """,
        subcommands: [Path.self, Clear.self]
    )

    struct Path: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the cache file's path (it may not exist yet).")
        func run() throws {
            guard let path = FFT.wisdomCachePath else { throw WisdomError.noCacheFolder }
            print(path)
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the cache file.")
        func run() throws { try FFT.clearWisdomCache() }
    }
}
