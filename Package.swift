// swift-tools-version: 6.1
//
// SSMKit: structured state space sequence models (S4, S4D, Mamba) on the CPU.
// Built and tested on Linux x86-64 (Debian's FFTW, OpenBLAS and LAPACKE); the SIMD loops are
// compiled for AVX2 and AVX-512 and the copy each CPU runs is chosen when the library loads.
// The benchmark suites live in the nested package Benchmarks/ so that users never build them.

import PackageDescription

let package = Package(
    name: "SSMKit",
    products: [
        .library(name: "SSMKit", targets: ["SSMKit"]),
        .library(name: "SSMTraining", targets: ["SSMTraining"]),
        .library(name: "SSMLanguage", targets: ["SSMLanguage"]),
        .executable(name: "ssm", targets: ["ssm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics.git", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // `swift package generate-documentation` builds the DocC catalogs.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // FFTW 3 in double and single precision, with the threads libraries.
        .systemLibrary(
            name: "CSSMKitFFTW",
            pkgConfig: "fftw3",
            providers: [.apt(["libfftw3-dev"])]
        ),
        // OpenBLAS (CBLAS) and LAPACKE. BLIS (Debian's libblis4-serial), for GEMMs on CPUs that
        // OpenBLAS does not recognize, is not linked: it is loaded at run time when installed
        // (Sources/SSMKit/Support/BLAS.swift).
        .systemLibrary(
            name: "CSSMKitBLAS",
            pkgConfig: "lapacke",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // The hot loops in C, each compiled for AVX-512, AVX2 and the baseline with the copy
        // chosen at load time (clones.h): spectral products, Cauchy sums, the selective scan's
        // rows and vectorized exponential, the step engine's rows.
        .target(name: "CSSMKitKernels"),
        // Process-wide settings the ssm tool makes at start-up (the malloc policy).
        .target(name: "CSSMKitProcess"),
        // Linux file calls Swift's Glibc module does not expose (renameat2).
        .target(name: "CSSMKitFiles"),
        // MPI by dlopen: nothing to link, so the package builds without OpenMPI.
        .target(name: "CSSMKitMPI"),
        .target(
            name: "SSMKit",
            dependencies: [
                "CSSMKitFFTW",
                "CSSMKitBLAS",
                "CSSMKitKernels",
                "CSSMKitFiles",
                .product(name: "Numerics", package: "swift-numerics"),
            ]
        ),
        // Layers with explicit forward and backward passes, built on the engine.
        .target(
            name: "SSMTraining",
            dependencies: ["SSMKit", "CSSMKitMPI"],
            // The 8×8 digits data set (scripts/make_digits.py), read by TrainingTask(.digits).
            resources: [.copy("Resources/digits.safetensors")]
        ),
        // Pretrained language models: Hugging Face checkpoints, the byte-level BPE tokenizer,
        // generation and perplexity, on the mixers of SSMTraining.
        .target(
            name: "SSMLanguage",
            dependencies: ["SSMKit", "SSMTraining"]
        ),
        .executableTarget(
            name: "ssm",
            dependencies: [
                "SSMKit",
                "SSMTraining",
                "SSMLanguage",
                "CSSMKitProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The readers' fuzz targets (scripts/fuzz.sh builds them with libFuzzer; a normal build
        // replays files through them).
        .executableTarget(
            name: "SSMFuzz",
            dependencies: ["SSMKit", "SSMTraining", "SSMLanguage"]
        ),
        .testTarget(
            name: "SSMKitTests",
            dependencies: ["SSMKit"]
        ),
        .testTarget(
            name: "SSMTrainingTests",
            dependencies: ["SSMTraining", "SSMKit"]
        ),
        .testTarget(
            name: "SSMLanguageTests",
            dependencies: ["SSMLanguage", "SSMTraining", "SSMKit"]
        ),
        // Runs the built `ssm` on the PyTorch fixtures of Tests/Fixtures and on bad input.
        .testTarget(
            name: "ssmTests",
            dependencies: ["SSMKit", "SSMTraining", "ssm"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
