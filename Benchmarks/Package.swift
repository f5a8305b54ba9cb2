// swift-tools-version: 6.1
//
// SSMKit's benchmark suites (ordo-one/package-benchmark), in a nested package so that users of
// SSMKit never build them. Run from this folder:
//
//     swift package benchmark                       # all suites
//     swift package benchmark --filter 'conv.*'     # one family
//     swift package benchmark baseline update main  # record a baseline
//     swift package benchmark baseline compare main # compare the working tree with it

import PackageDescription

let package = Package(
    name: "SSMKitBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "SSMKit", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ConvolutionBenchmarks",
            dependencies: [
                .product(name: "SSMKit", package: "SSMKit"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ConvolutionBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SelectiveScanBenchmarks",
            dependencies: [
                .product(name: "SSMKit", package: "SSMKit"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/SelectiveScanBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "StepEngineBenchmarks",
            dependencies: [
                .product(name: "SSMKit", package: "SSMKit"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/StepEngineBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "KernelBenchmarks",
            dependencies: [
                .product(name: "SSMKit", package: "SSMKit"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/KernelBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
