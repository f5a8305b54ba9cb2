// swift-tools-version: 6.1
//
// SSMKit: structured state space sequence models (S4, S4D, Mamba) on the CPU.
// The benchmark suites live in the nested package Benchmarks/ so that users never build them.

import PackageDescription

let package = Package(
    name: "SSMKit",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "SSMKit", targets: ["SSMKit"]),
        .library(name: "SSMTraining", targets: ["SSMTraining"]),
        .executable(name: "ssm", targets: ["ssm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics.git", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // FFTW 3 in double and single precision, with the threads libraries.
        .systemLibrary(
            name: "CFFTW",
            pkgConfig: "fftw3",
            providers: [.apt(["libfftw3-dev"]), .brew(["fftw"])]
        ),
        // OpenBLAS (CBLAS) and LAPACKE.
        .systemLibrary(
            name: "CLAPACK",
            pkgConfig: "lapacke",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"]), .brew(["openblas"])]
        ),
        // The pointwise spectral products, with AVX2 / AVX-512 clones chosen at load time.
        .target(name: "CSpectral"),
        // The selective scan's row loops and vectorized exponential, cloned the same way.
        .target(name: "CSelective"),
        // The step-mode row loops (diagonal, DPLR linear, dense), cloned the same way.
        .target(name: "CRecurrence"),
        // Process-wide settings the ssm tool makes at start-up (the malloc policy).
        .target(name: "CProcess"),
        .target(
            name: "SSMKit",
            dependencies: [
                "CFFTW",
                "CLAPACK",
                "CSpectral",
                "CSelective",
                "CRecurrence",
                .product(name: "Numerics", package: "swift-numerics"),
            ]
        ),
        // Layers with explicit forward and backward passes, built on the engine.
        .target(name: "SSMTraining", dependencies: ["SSMKit"]),
        .executableTarget(
            name: "ssm",
            dependencies: [
                "SSMKit",
                "SSMTraining",
                "CProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "SSMKitTests",
            dependencies: ["SSMKit"]
        ),
        .testTarget(
            name: "SSMTrainingTests",
            dependencies: ["SSMTraining", "SSMKit"]
        ),
        // Runs the built `ssm` on the fixtures of ../shared/reference and on bad input.
        .testTarget(
            name: "ssmTests",
            dependencies: ["SSMKit", "ssm"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
